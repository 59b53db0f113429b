"""The login path's refresh-token insert (db/refresh_tokens.py insert_token_async):
on SQLite through the group-commit writer, on PostgreSQL one autocommit statement
on the event loop. It must store what SQLAlchemy stores, on both."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from tests.db.test_refresh_rotation_sqlite import row_values
from userservice.db.engine import Database
from userservice.db.models import RefreshToken, User
from userservice.db.refresh_tokens import NewRefreshToken, insert_token_async

COLUMNS = (
    RefreshToken.family_id,
    RefreshToken.user_id,
    RefreshToken.client_id,
    RefreshToken.scope,
    RefreshToken.issued_at,
    RefreshToken.expires_at,
    RefreshToken.revoked_at,
)


def _rows(db: Database, token_digest: str) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        found = conn.execute(select(*COLUMNS).where(RefreshToken.digest == token_digest))
        return [tuple(row) for row in found]


def test_async_insert_stores_what_sqlalchemy_stores(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    db: Database = app.state.services.accounts.db
    with db.engine.connect() as conn:
        user_id = conn.scalars(select(User.id)).one()
    values = row_values(user_id)
    with db.engine.begin() as conn:
        conn.execute(insert(RefreshToken).values(digest="by-sqlalchemy", **values))
    token = NewRefreshToken(digest="on-the-loop", **values)
    assert client.portal is not None
    client.portal.call(insert_token_async, db, token)
    if not db.is_sqlite:
        # The event loop's reader runs a statement again on a new connection when a
        # reused one was dead, and the first attempt may have committed: the second
        # is a no-op, not an error.
        client.portal.call(insert_token_async, db, token)
    stored = _rows(db, "on-the-loop")
    assert stored == _rows(db, "by-sqlalchemy")
    assert len(stored) == 1
