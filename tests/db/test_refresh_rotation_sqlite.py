"""On SQLite the rotation's statements run straight on the sqlite3 connection
(db/refresh_tokens.py). What they store must be exactly what SQLAlchemy stores,
and what they read back must equal what SQLAlchemy reads."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from userservice.db.engine import Database
from userservice.db.models import RefreshToken, User
from userservice.db.refresh_tokens import (
    NewRefreshToken,
    claim_for_rotation,
    insert_token,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

NOW = dt.datetime(2026, 11, 24, 10, 30, 15, 123456, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 24, 10, 30, 15, tzinfo=dt.UTC)


def row_values(user_id: uuid.UUID) -> dict[str, Any]:
    """A refresh token's columns but the digest, with sub-second and time-zone
    detail that a wrong conversion would lose."""
    return {
        "family_id": uuid.uuid4(),
        "user_id": user_id,
        "client_id": "userservice-frontend",
        "scope": "openid profile",
        "issued_at": NOW,
        "expires_at": LATER,
    }


def _db(app: FastAPI) -> Database:
    db: Database = app.state.services.accounts.db
    return db


def _user_id(db: Database) -> uuid.UUID:
    with db.engine.connect() as conn:
        return conn.scalars(select(User.id)).one()


def _raw_row(db: Database, token_digest: str) -> tuple[Any, ...]:
    with sqlite3.connect(str(db.engine.url.database)) as conn:
        row: tuple[Any, ...] = conn.execute(
            "SELECT family_id, user_id, client_id, scope, issued_at, expires_at"
            " FROM refresh_tokens WHERE digest = ?",
            (token_digest,),
        ).fetchone()
    return row


def test_raw_insert_stores_what_sqlalchemy_stores(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    db = _db(app)
    values = row_values(_user_id(db))
    with db.engine.begin() as conn:
        conn.execute(insert(RefreshToken).values(digest="by-sqlalchemy", **values))
        insert_token(conn, NewRefreshToken(digest="raw", **values))
    assert _raw_row(db, "raw") == _raw_row(db, "by-sqlalchemy")


def test_raw_claim_reads_what_sqlalchemy_reads(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    db = _db(app)
    user_id = _user_id(db)
    with db.engine.begin() as conn:
        token = NewRefreshToken(
            digest="d",
            family_id=uuid.uuid4(),
            user_id=user_id,
            client_id="userservice-frontend",
            scope="openid",
            issued_at=NOW,
            expires_at=LATER,
        )
        insert_token(conn, token)
    with db.engine.connect() as conn:
        stored = conn.execute(select(RefreshToken).where(RefreshToken.digest == "d")).one()
    with db.engine.begin() as conn:
        claimed = claim_for_rotation(conn, "d", LATER)
        assert claim_for_rotation(conn, "d", LATER) is None  # retired by the first
        assert claim_for_rotation(conn, "unknown", LATER) is None
    assert claimed is not None
    assert (claimed.family_id, claimed.user_id, claimed.client_id, claimed.scope) == (
        stored.family_id,
        stored.user_id,
        stored.client_id,
        stored.scope,
    )
    assert (claimed.issued_at, claimed.expires_at) == (NOW, LATER)
    assert (claimed.user_active, claimed.tokens_valid_after) == (True, 0)


def test_raw_statement_errors_surface_as_sqlalchemy_errors(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    db = _db(app)
    with db.engine.connect() as conn:
        conn.connection.dbapi_connection.execute("PRAGMA query_only=ON")  # type: ignore[union-attr]
        try:
            with pytest.raises(OperationalError):  # the app answers these with 503
                claim_for_rotation(conn, "d", NOW)
        finally:
            conn.connection.dbapi_connection.execute("PRAGMA query_only=OFF")  # type: ignore[union-attr]
