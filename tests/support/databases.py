"""Fresh, migrated databases per test, copied from a template built once through
the real migration chain (so every test sees the schema exactly as deployed)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from tests.support.postgres import PostgresServer
from tests.support.wiring import engine_of
from userservice.db import migrate
from userservice.db.engine import build_engine, open_database
from userservice.services.keys import KeyStore


def _prepare(engine: Engine) -> None:
    migrate.upgrade(engine)
    db = open_database(engine)
    KeyStore(db).ensure()
    db.dispose()


class SqliteTemplates:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        _prepare(build_engine(f"sqlite:///{self.template}"))

    def fresh_url(self, target_dir: Path) -> str:
        target = target_dir / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, target)
        target.chmod(0o600)  # as the service creates it (S11): no "tightened" log line
        return f"sqlite:///{target}"


class PostgresTemplates:
    TEMPLATE = "userservice_template"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._admin(f"CREATE DATABASE {self.TEMPLATE}")
        _prepare(build_engine(server.url(self.TEMPLATE)))

    def _admin(self, sql: str) -> None:
        conninfo = f"host=127.0.0.1 port={self.server.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh_url(self) -> tuple[str, str]:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return self.server.url(name), name

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def empty_url(self) -> tuple[str, str]:
        name = f"e_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name}")
        return self.server.url(name), name


def break_database(db_url: str, request: pytest.FixtureRequest) -> None:
    """Take the test's database away under the running app: every later connection
    fails, as when the server is down or the file is gone."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.mkdir()  # a directory where the file was: every connect now fails
        # Pooled connections still hold the unlinked file open; drop them.
        engine_of(request.getfixturevalue("app")).dispose()
        return
    templates: PostgresTemplates = request.getfixturevalue("pg_templates")
    templates.drop(db_url.rsplit("/", 1)[1])  # WITH (FORCE): ends our connections too


def waiting_on_a_lock(db_url: str) -> bool:
    """Whether some session of this PostgreSQL database now waits for a lock (a
    test's condition that its concurrent step has reached the lock it expects)."""
    conninfo = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])
