"""Engine, session factory and the unit of work."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from userservice.db.group_commit import GroupCommitter
from userservice.db.lookup_batch import LookupBatcher
from userservice.db.sqlite_lock import WriterLock
from userservice.security.files import private_file

if TYPE_CHECKING:
    from userservice.db.async_reads import AsyncReader

T = TypeVar("T")
# As long as SQLite's busy_timeout: then 503 + Retry-After, like a locked database.
WRITE_WAIT_SECONDS = 5.0


class DatabaseConfigError(ValueError):
    pass


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def sqlite_utc(text: str) -> dt.datetime:
    """A DateTime column's value as read on a plain sqlite3 connection."""
    # SQLAlchemy stores naive UTC text. Parsing an appended offset costs a sixth of
    # datetime.replace(tzinfo=...): up to 400 of these per admin list page.
    try:
        return dt.datetime.fromisoformat(text + "+00:00")
    except ValueError:  # text written with an offset of its own
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


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
    # We emit BEGIN ourselves (_sqlite_begin): the sqlite3 module's own implicit
    # transactions cannot say IMMEDIATE, and mishandle SAVEPOINT.
    dbapi_connection.isolation_level = None


SQLITE_WRITE = "userservice_sqlite_write"
# For one-statement reads on hot paths (client lookup): no BEGIN/COMMIT around a
# single SELECT, which is atomic on its own (the sqlite3 module's old default).
SINGLE_READ_OPTION = "userservice_single_read"
SINGLE_READ = {SINGLE_READ_OPTION: True}


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock at BEGIN (IMMEDIATE). A deferred transaction
    # that reads first and writes later must upgrade its lock, and SQLite answers
    # "database is locked" at once when another writer got there first, without
    # waiting (busy_timeout does not apply to that upgrade).
    options = conn.get_execution_options()
    if options.get(SINGLE_READ_OPTION):
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(SQLITE_WRITE) else "BEGIN")


def build_engine(url: str, *, pool_size: int = 16) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_files(parsed.database)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 5},
            # Beyond pool_size every checkout opened a new connection (and ran the
            # pragmas): keep enough for the threadpool's usual concurrency.
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseConfigError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(
            parsed,
            # Overflow connections are closed on check-in, so a pool smaller than the
            # usual concurrency reconnects on every request (profiled): keep
            # the steady state inside pool_size, overflow for bursts only.
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            pool_timeout=10,
        )
    except (ArgumentError, ImportError) as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None
    ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


# Files SQLite (and our writer lock) keep beside the database.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", ".writer-lock")


def _private_sqlite_files(path: str) -> None:
    # S11: SQLite creates the file 0644 and gives its -wal and -shm the database
    # file's mode; made 0600 first, every file beside it follows.
    private_file(Path(path))
    for suffix in SQLITE_SIDE_FILES:
        private_file(Path(path + suffix), create=False)


# A connection back in use within this time is used without a ping.
IDLE_PING_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Survive a database restart without restarting us: a connection that sat idle
    longer than `idle_seconds` is pinged at checkout, and replaced if dead.

    SQLAlchemy's pool_pre_ping pings at every checkout: a round trip that cost a
    fifth of a PostgreSQL refresh (profiled). Busy connections skip it; if the
    server drops one anyway, the failing statement's disconnect error makes the pool
    replace every connection it handed out before (SQLAlchemy invalidates the pool),
    so only statements already in flight at the restart fail (503, Retry-After)."""

    def checked_in(_dbapi: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out a new one.
            raise DisconnectionError("the database closed this connection") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.session_factory = sessionmaker(engine, expire_on_commit=False)
        # Short reads (run_lookup) for networked databases run in threads of their own,
        # so a login storm filling the default threadpool cannot starve them.
        self._lookup_slots = anyio.CapacityLimiter(16)
        path = engine.url.database
        self._writer_lock = (
            WriterLock(path) if self.is_sqlite and path and path != ":memory:" else None
        )
        self._readers = threading.local()
        self._reader_lock = threading.Lock()
        self._all_readers: set[sqlite3.Connection] = set()
        self._generation = 0
        if self.is_sqlite:
            event.listen(engine, "engine_disposed", self._pool_disposed)
        self._group_commit = (
            GroupCommitter(engine, self._writer_lock, {SQLITE_WRITE: True}, WRITE_WAIT_SECONDS)
            if self.is_sqlite
            else None
        )
        self._async_reader: AsyncReader | None = None
        self._batchers: dict[str, LookupBatcher] = {}
        if not self.is_sqlite:
            # Imported here: psycopg is only needed (and loaded) for PostgreSQL.
            from userservice.db.async_reads import AsyncReader

            self._async_reader = AsyncReader(engine.url, 8)

    async def pg_read(self, sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        """One read on the event loop, for PostgreSQL (see db/async_reads.py)."""
        if self._async_reader is None:
            raise DatabaseConfigError("pg_read needs PostgreSQL")
        return await self._async_reader.fetch(sql, params)

    async def write_batched(self, work: Callable[[Connection], T]) -> T:
        """A short write on SQLite, run by the writer thread in a transaction shared
        with the writes queued beside it (db/group_commit.py). Raising in `work`
        rolls back its own statements only."""
        if self._group_commit is None:
            raise DatabaseConfigError("write_batched needs SQLite")
        return await self._group_commit.run(work)

    def pg_batched(self, sql: str, array_names: Sequence[str]) -> LookupBatcher:
        """The batcher for one lookup statement (db/lookup_batch.py), PostgreSQL only."""
        batcher = self._batchers.get(sql)
        if batcher is None:
            batcher = self._batchers[sql] = LookupBatcher(self.pg_read, sql, array_names)
        return batcher

    async def close_async(self) -> None:
        if self._async_reader is not None:
            await self._async_reader.close()

    def sqlite_read(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Run one read on a plain sqlite3 connection of this thread: the bearer hot
        path's query, at a third of the time SQLAlchemy's pool checkout, execution
        and row processing took around it (profiled). Read-only (PRAGMA
        query_only), autocommit and read to the end, so no snapshot stays open and
        every read sees the latest commit. Errors surface as SQLAlchemy's, like every
        other query's (503, not 500)."""
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._drop_reader()  # e.g. the file is gone: reconnect next time
            raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from None

    def _reader(self) -> sqlite3.Connection:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._readers, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        self._drop_reader()
        path = self.engine.url.database
        if not path or path == ":memory:":
            raise DatabaseConfigError("the SQLite reader needs a database file")
        # Only ever used by this thread; check_same_thread=False lets dispose() close it.
        reader = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA query_only=ON")
        reader.execute("PRAGMA busy_timeout=5000")
        self._readers.held = (self._generation, reader)
        with self._reader_lock:
            self._all_readers.add(reader)
        return reader

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
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error.

        On SQLite, writers take turns on a lock of ours (db/sqlite_lock.py) before
        BEGIN IMMEDIATE, instead of sleep-polling in SQLite's busy handler."""
        serialize = self.is_sqlite and not read_only
        lock = self._writer_lock
        if serialize and lock is not None and not lock.acquire(timeout=WRITE_WAIT_SECONDS):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        session = self.session_factory()
        try:
            if serialize:
                session.connection(execution_options={SQLITE_WRITE: True})
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if serialize and lock is not None:
                lock.release()

    async def run_lookup(self, func: Callable[[Engine], T]) -> T:
        """Run a short read. SQLite answers in microseconds from a local file, so it
        runs inline; a network round trip must never block the event loop."""
        if self.is_sqlite:
            return func(self.engine)
        return await anyio.to_thread.run_sync(func, self.engine, limiter=self._lookup_slots)

    def dispose(self) -> None:
        with self._reader_lock:
            readers, self._all_readers = self._all_readers, set()
        for reader in readers:
            reader.close()
        if self._group_commit is not None:
            self._group_commit.close()
        if self._writer_lock is not None:
            self._writer_lock.close()
        self.engine.dispose()
