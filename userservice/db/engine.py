"""The database a deployment uses, chosen once from its URL: the engine, and the
backend that runs the hot statements and the units of work (db/backend.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from userservice.db.backend import Database as Database
from userservice.db.postgres.connect import postgres_engine
from userservice.db.sqlite.connect import sqlite_engine


class DatabaseConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How a serving process uses its database connections. The defaults are the
    command line's: no statement timeout for migrations, pruning or backups."""

    size: int = 16
    timeout_seconds: float = 10.0
    connect_timeout_seconds: int = 5
    statement_timeout_ms: int = 0  # 0: none (migrations, prune, the command line)


def build_engine(url: str, *, pool: PoolOptions | None = None) -> Engine:
    options = pool or PoolOptions()
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return sqlite_engine(parsed, options.size)
    if backend != "postgresql":
        raise DatabaseConfigError(f"unsupported database {backend!r}: use sqlite or postgresql")
    try:
        return postgres_engine(
            parsed,
            options.size,
            pool_timeout=options.timeout_seconds,
            connect_timeout_seconds=options.connect_timeout_seconds,
            statement_timeout_ms=options.statement_timeout_ms,
        )
    except (ArgumentError, ImportError) as exc:
        raise DatabaseConfigError(f"bad database URL: {exc}") from None


def open_database(engine: Engine) -> Database:
    """The one place that asks which database this is."""
    if engine.dialect.name == "sqlite":
        from userservice.db.sqlite.backend import SqliteDatabase

        return SqliteDatabase(engine)
    # Imported here: psycopg is only needed (and loaded) for PostgreSQL.
    from userservice.db.postgres.backend import PostgresDatabase

    return PostgresDatabase(engine)
