"""What every database backend offers (db/sqlite/, db/postgres/): the hot paths'
statements, run the fastest way that database allows, and a unit of work for
the cold paths. Which backend serves a deployment is decided once, by
db/engine.py open_database; nothing else asks which database it is."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from userservice.db.audit import AuditWrites
from userservice.db.clients import ClientReads
from userservice.db.outbox import Outbox
from userservice.db.refresh_tokens import RefreshTokens
from userservice.db.revoked_tokens import DenyList
from userservice.db.sessions import SessionReads
from userservice.db.statement import Params, Row, Statement, Succession
from userservice.db.user_search import UserSearch
from userservice.db.users import UserReads

T = TypeVar("T")


class BackupUnsupported(RuntimeError):
    pass


class Database(abc.ABC):
    """One database, implementing every storage port (db/ports.py): the hot
    operations, written once over this backend's way of running a statement, and
    a unit of work for the cold paths."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        self.users = UserReads(self)
        self.clients = ClientReads(self)
        self.refresh_tokens = RefreshTokens(self)
        self.user_search = UserSearch(self)
        self.sessions = SessionReads(self)
        self.deny_list = DenyList(self)
        self.outbox = Outbox(self)
        self.audit = AuditWrites(self)

    @abc.abstractmethod
    async def fetch(self, statement: Statement, params: Params) -> list[Row]:
        """A short read (an index lookup or range) on the event loop."""

    @abc.abstractmethod
    async def fetch_one(self, statement: Statement, params: Params) -> Row | None:
        """The one row a key names, or None (batched where the backend can)."""

    @abc.abstractmethod
    async def scan(self, statement: Statement, params: Params) -> list[Row]:
        """A read that may scan many rows; it must not stall the event loop."""

    @abc.abstractmethod
    async def write(self, statement: Statement, params: Params) -> list[Row]:
        """One statement committed on its own (with RETURNING rows, if any)."""

    @abc.abstractmethod
    async def succeed(self, succession: Succession, params: Params) -> Row | None:
        """The claimed row as RETURNING gives it, once its successor is committed;
        None when the claim was refused (nothing changed)."""

    @abc.abstractmethod
    def prune_turn(self) -> AbstractContextManager[bool]:
        """The deployment's one pruning turn (db/prune_lock.py, db/ports.py)."""

    def watch_own_connections(self, moved: Callable[[int], None]) -> int:
        """Connections this backend opens outside the engine's pool (none here):
        `moved(+1)` when one is taken for a statement and `moved(-1)` when it is
        given back; returns how many there may be at most."""
        return 0

    def _lift_limits(self, session: Session) -> None:
        """Lift the serving time limits for this transaction (none by default)."""
        return None

    def backup(self, target: Path) -> None:
        """Copy the database to the new file `target` (`userservice backup`)."""
        raise BackupUnsupported("this database is backed up with its own tools")

    @abc.abstractmethod
    def _write_turn(self) -> Any:
        """A context manager held around a writing unit of work."""

    @abc.abstractmethod
    def _begin_write(self, session: Session) -> None:
        """Open the writing transaction the way this database needs."""

    @contextmanager
    def unit_of_work(
        self, *, read_only: bool = False, unbounded: bool = False
    ) -> Iterator[Session]:
        """One transaction for the cold paths: committed when the block ends, rolled
        back on error. `unbounded`: pruning's batches, with limits of their own in
        place of the serving ones (a long statement, but a short wait for a lock)."""
        with self._write_turn() if not read_only else _nothing():
            session = self.session_factory()
            try:
                if not read_only:
                    self._begin_write(session)
                if unbounded:
                    self._lift_limits(session)
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    async def run_lookup(self, func: Callable[[Engine], T]) -> T:
        """A short blocking read of a cold path (through the engine's pool)."""
        return await anyio.to_thread.run_sync(func, self.engine)

    async def close_async(self) -> None:
        return None

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
