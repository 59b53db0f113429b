"""The SQLite backend: hot reads on a plain sqlite3 connection per thread, hot
writes through one group-commit writer thread per process, and writers of every
process taking turns on one lock (writer_lock.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar, cast

import anyio
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from userservice.db.backend import BackupUnsupported, Database
from userservice.db.prune_lock import sqlite_prune_turn
from userservice.db.sqlite.backup import backup_sqlite
from userservice.db.sqlite.compiled import Compiled, StatementCache
from userservice.db.sqlite.connect import SQLITE_WRITE
from userservice.db.sqlite.group_commit import GroupCommitter
from userservice.db.sqlite.writer_lock import WriterLock
from userservice.db.statement import Params, Row, Statement, Succession

T = TypeVar("T")
# As long as SQLite's busy_timeout: then 503 + Retry-After, like a locked database.
WRITE_WAIT_SECONDS = 5.0


class ReaderConfigError(ValueError):
    pass


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))


class SqliteDatabase(Database):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        path = engine.url.database
        self._path = path if path and path != ":memory:" else None
        self._writer_lock = WriterLock(self._path) if self._path else None
        self._compiled = StatementCache()
        self._readers = threading.local()
        self._reader_lock = threading.Lock()
        self._all_readers: set[sqlite3.Connection] = set()
        self._generation = 0
        event.listen(engine, "engine_disposed", self._pool_disposed)
        self._group_commit = GroupCommitter(
            engine, self._writer_lock, {SQLITE_WRITE: True}, WRITE_WAIT_SECONDS
        )

    # A local file answers an index lookup in microseconds: reads run inline, on
    # the thread's plain sqlite3 connection, at a third of the time SQLAlchemy's
    # pool checkout, execution and row processing took around them (profiled).
    async def fetch(self, statement: Statement, params: Params) -> list[Row]:
        compiled = self._compiled(statement)
        return [compiled.decode(row) for row in self._read(compiled, params)]

    async def fetch_one(self, statement: Statement, params: Params) -> Row | None:
        compiled = self._compiled(statement)
        rows = self._read(compiled, params)
        return compiled.decode(rows[0]) if rows else None

    async def scan(self, statement: Statement, params: Params) -> list[Row]:
        # A scan took 0.1-0.4 s at 1M users: in a worker thread, on a connection of
        # its own (the per-thread readers would outlive the threadpool's threads).
        compiled = self._compiled(statement)

        def scan_here() -> list[Row]:
            with self._private_reader() as reader:
                return [compiled.decode(row) for row in compiled.run(reader, params)]

        return await anyio.to_thread.run_sync(scan_here)

    async def write(self, statement: Statement, params: Params) -> list[Row]:
        compiled = self._compiled(statement)

        def work(conn: Connection) -> list[Row]:
            return [compiled.decode(row) for row in compiled.run(_raw(conn), params)]

        return await self._group_commit.run(work)

    async def succeed(self, succession: Succession, params: Params) -> Row | None:
        # SQLite has no data-modifying CTE: the claim, then the insert, both in the
        # writer thread's transaction (a refused claim changed nothing).
        claim, successor, positions = self._compiled.succession(succession)
        carried = tuple(zip(succession.carried, positions, strict=True))

        def work(conn: Connection) -> Row | None:
            raw = _raw(conn)
            rows = claim.run(raw, params)
            if not rows:
                return None
            values = {name: rows[0][index] for name, index in carried} | {
                column: params[param] for column, param in succession.fresh.items()
            }
            successor.run(raw, values)
            return claim.decode(rows[0])

        return await self._group_commit.run(work)

    def _read(self, compiled: Compiled, params: Params) -> list[Row]:
        try:
            rows = compiled.run(self._reader(), params)
        except Exception:
            self._drop_reader()  # e.g. the file is gone: reconnect next time
            raise
        return rows

    def _reader(self) -> sqlite3.Connection:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._readers, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        self._drop_reader()
        reader = self._connect_reader()
        self._readers.held = (self._generation, reader)
        with self._reader_lock:
            self._all_readers.add(reader)
        return reader

    def _connect_reader(self) -> sqlite3.Connection:
        if self._path is None:
            raise ReaderConfigError("the SQLite reader needs a database file")
        # Read-only, autocommit and read to the end: no snapshot stays open, and
        # every read sees the latest commit. check_same_thread=False lets dispose()
        # close it; only its own thread ever uses it.
        try:
            reader = sqlite3.connect(
                self._path, timeout=5, isolation_level=None, check_same_thread=False
            )
            reader.execute("PRAGMA query_only=ON")
            reader.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:  # e.g. the file is gone: 503, like any query's error
            raise DBAPIError.instance("connect", None, exc, sqlite3.Error) from None
        return reader

    @contextmanager
    def _private_reader(self) -> Iterator[sqlite3.Connection]:
        reader = self._connect_reader()
        try:
            yield reader
        finally:
            reader.close()

    def _drop_reader(self) -> None:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._readers, "held", None)
        self._readers.held = None
        if held is not None:
            with self._reader_lock:
                self._all_readers.discard(held[1])
            held[1].close()

    def _pool_disposed(self, _engine: Engine) -> None:
        # engine.dispose() drops pooled connections (tests and operators use it after
        # replacing the file): readers follow, each closed by its own thread.
        self._generation += 1

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        # Writers take turns on a lock of ours before BEGIN IMMEDIATE, instead of
        # sleep-polling in SQLite's busy handler (writer_lock.py).
        lock = self._writer_lock
        if lock is not None and not lock.acquire(timeout=WRITE_WAIT_SECONDS):
            raise _locked()
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def _begin_write(self, session: Session) -> None:
        session.connection(execution_options={SQLITE_WRITE: True})

    async def run_lookup(self, func: Callable[[Engine], T]) -> T:
        # A local file answers a short read in microseconds: inline.
        return func(self.engine)

    def prune_turn(self) -> AbstractContextManager[bool]:
        return sqlite_prune_turn(self._path)

    def backup(self, target: Path) -> None:
        # The engine made an empty file if there was none: nothing to back up yet.
        if self._path is None or os.path.getsize(self._path) == 0:
            raise BackupUnsupported(f"no database yet at {self._path or '(memory)'}")
        backup_sqlite(self._path, target)

    def dispose(self) -> None:
        with self._reader_lock:
            readers, self._all_readers = self._all_readers, set()
        for reader in readers:
            reader.close()
        self._group_commit.close()
        if self._writer_lock is not None:
            self._writer_lock.close()
        self.engine.dispose()


def _raw(conn: Connection) -> sqlite3.Connection:
    return cast(sqlite3.Connection, conn.connection.dbapi_connection)
