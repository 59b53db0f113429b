"""SQLite engines: pragmas, transaction begin, private files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection

from userservice.security.files import private_file

SQLITE_WRITE = "userservice_sqlite_write"
# Files SQLite (and our writer lock) keep beside the database.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", ".writer-lock")


def sqlite_engine(url: URL, pool_size: int) -> Engine:
    if url.database and url.database != ":memory:":
        _private_sqlite_files(url.database)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 5},
        # Beyond pool_size every checkout opened a new connection (and ran the
        # pragmas): keep enough for the threadpool's usual concurrency.
        pool_size=pool_size,
        max_overflow=pool_size,
    )
    event.listen(engine, "connect", _pragmas)
    event.listen(engine, "begin", _begin)
    return engine


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable at each
    # checkpoint and crash-safe (no corruption) in WAL mode; busy_timeout makes
    # writers queue instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # We emit BEGIN ourselves (_begin): the sqlite3 module's own implicit
    # transactions cannot say IMMEDIATE, and mishandle SAVEPOINT.
    dbapi_connection.isolation_level = None


def _begin(conn: Connection) -> None:
    # A writer takes the write lock at BEGIN (IMMEDIATE). A deferred transaction
    # that reads first and writes later must upgrade its lock, and SQLite answers
    # "database is locked" at once when another writer got there first, without
    # waiting (busy_timeout does not apply to that upgrade).
    write = conn.get_execution_options().get(SQLITE_WRITE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _private_sqlite_files(path: str) -> None:
    # S11: SQLite creates the file 0644 and gives its -wal and -shm the database
    # file's mode; made 0600 first, every file beside it follows.
    private_file(Path(path))
    for suffix in SQLITE_SIDE_FILES:
        private_file(Path(path + suffix), create=False)
