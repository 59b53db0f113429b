"""Engine, session factory and the unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


class DatabaseConfigError(ValueError):
    pass


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable at each
    # checkpoint and crash-safe (no corruption) in WAL mode; busy_timeout makes
    # writers queue instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def build_engine(url: str, *, pool_size: int = 10) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseConfigError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,  # survive a database restart without restarting us
            pool_timeout=10,
        )
    except (ArgumentError, ImportError) as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        # Lookups on the bearer hot path for networked databases run in threads of
        # their own, so a login storm filling the default threadpool cannot starve them.
        self._lookup_slots = anyio.CapacityLimiter(16)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    async def run_lookup(self, func: Callable[[Engine], T]) -> T:
        """Run a short read. SQLite answers in microseconds from a local file, so it
        runs inline; a network round trip must never block the event loop."""
        if self.is_sqlite:
            return func(self.engine)
        return await anyio.to_thread.run_sync(func, self.engine, limiter=self._lookup_slots)

    def dispose(self) -> None:
        self.engine.dispose()
