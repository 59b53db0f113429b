"""The storage backend opened on a test's fresh database, without the application
around it, and the rows a storage test arranges or inspects through the backend's
own unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from userservice.db.backend import Database
from userservice.db.codec import utc
from userservice.db.engine import build_engine, open_database
from userservice.db.models import OAuthClient, RefreshToken, User
from userservice.db.ports import Storage
from userservice.db.user_search import search_params, search_statement
from userservice.records import UserRecord

# Created by migration 0001: first-party, with every grant type.
FRONTEND = "userservice-frontend"


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """The backend create_app would pick for `db_url` (SQLite or PostgreSQL)."""
    db = open_database(build_engine(db_url))
    yield db
    db.dispose()


def add_user(db: Database, email: str = "ada@example.com", **values: Any) -> uuid.UUID:
    user_id = uuid.uuid4()
    with db.unit_of_work() as session:
        session.add(User(id=user_id, email=email, password_hash="not-a-hash", **values))
    return user_id


def set_user(db: Database, user_id: uuid.UUID, **values: Any) -> None:
    with db.unit_of_work() as session:
        session.execute(update(User).where(User.id == user_id).values(**values))


def add_client(db: Database, client_id: str, **values: Any) -> str:
    fields: dict[str, Any] = {
        "client_name": f"test client {client_id}",
        "client_type": "public",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "grant_types": ["refresh_token"],
        "response_types": [],
        "scope": "openid profile",
        "extra": {},
    }
    with db.unit_of_work() as session:
        session.add(OAuthClient(client_id=client_id, **(fields | values)))
    return client_id


def refresh_row(db: Database, token_digest: str) -> RefreshToken | None:
    """The stored row, with aware datetimes on both databases."""
    with db.unit_of_work(read_only=True) as session:
        row = session.scalars(select(RefreshToken).where(RefreshToken.digest == token_digest))
        found = row.first()
    if found is not None:
        for name in ("issued_at", "expires_at", "last_used_at", "revoked_at"):
            moment = getattr(found, name)
            if moment is not None:  # SQLite hands back naive datetimes, stored in UTC
                setattr(found, name, utc(moment))
    return found


def refresh_rows(db: Database) -> int:
    with db.unit_of_work(read_only=True) as session:
        return len(session.scalars(select(RefreshToken.id)).all())


def session_page(
    db: Storage, *, email: str | None, name: str | None, after: str | None, limit: int
) -> list[UserRecord]:
    """The admin list page through an ORM Session and SQLAlchemy's type processing:
    what the user-search port's page must equal."""
    shape, params = search_params(email=email, name=name, after_email=after, limit=limit)
    statement = search_statement(email=shape[0], name=shape[1], after=shape[2])
    with db.unit_of_work(read_only=True) as session:
        rows = [tuple(row) for row in session.execute(statement, params)]
    return [UserRecord(*row[:6], utc(row[6]), utc(row[7]), row[8]) for row in rows]
