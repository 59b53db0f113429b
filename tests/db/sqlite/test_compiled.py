"""Hot statements compiled for SQLite run on plain sqlite3 connections
(db/sqlite/compiled.py); their errors must surface as SQLAlchemy's, which the
application answers with 503 (or a refusal), never as a bare sqlite3 error."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.support.storage import FRONTEND
from userservice.db.backend import Database
from userservice.db.models import RevokedAccessToken
from userservice.db.refresh_tokens import ROTATION
from userservice.db.sqlite.compiled import compile_sqlite

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def raw(database: Database) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(database.engine.url.database), isolation_level=None)
    yield conn
    conn.close()


def test_a_write_on_a_read_only_connection_is_an_operational_error(
    raw: sqlite3.Connection,
) -> None:
    raw.execute("PRAGMA query_only=ON")
    params = {
        "token_digest": "d",
        "successor_digest": "e",
        "client_id": FRONTEND,
        "requested": "[]",
        "now": NOW,
        "idle_cutoff": NOW,
    }
    with pytest.raises(OperationalError):
        compile_sqlite(ROTATION.claim).run(raw, params)


def test_a_duplicate_key_is_an_integrity_error(raw: sqlite3.Connection) -> None:
    deny = compile_sqlite(insert(RevokedAccessToken).values(jti="twice", expires_at=NOW))
    assert deny.run(raw, {}) == []
    with pytest.raises(IntegrityError):
        deny.run(raw, {})
