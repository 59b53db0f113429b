"""OAuth client repository."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, DateTime, bindparam, delete, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session, make_transient_to_detached

from userservice.db.engine import SINGLE_READ, Database
from userservice.db.models import OAuthClient

# Created by migration 0001 so frontends and the docs UI can log in out of the box.
FIRST_PARTY_CLIENT_ID = "userservice-frontend"


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, client_id: str) -> OAuthClient | None:
        return self.session.get(OAuthClient, client_id)

    def get_for_update(self, client_id: str) -> OAuthClient | None:
        # Row lock on PostgreSQL so that two concurrent edits cannot lose one another.
        return self.session.get(OAuthClient, client_id, with_for_update=True)

    def add(self, client: OAuthClient) -> OAuthClient:
        self.session.add(client)
        self.session.flush()
        return client

    def list_all(self) -> Sequence[OAuthClient]:
        return self.session.scalars(
            select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.client_id)
        ).all()

    def delete(self, client_id: str) -> bool:
        # Refresh tokens, codes and consents of the client go with it (ON DELETE CASCADE).
        result = self.session.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
        return bool(getattr(result, "rowcount", 0))


def load_client(db: Database, client_id: str) -> OAuthClient | None:
    """A detached OAuthClient, or None. One SELECT and no ORM Session: this runs on
    every client authentication (issue 4 profile); on SQLite on the thread's plain
    sqlite3 connection, like the bearer check."""
    if "\x00" in client_id:
        # No client id holds NUL, and PostgreSQL refuses it in a query (DataError, 503).
        return None
    if db.is_sqlite:
        rows = db.sqlite_read(_SQLITE_CLIENT_BY_ID, [client_id])
        values = (
            [_from_sqlite(kind, value) for kind, value in zip(_CLIENT_KINDS, rows[0], strict=True)]
            if rows
            else None
        )
    else:
        with db.engine.connect().execution_options(**SINGLE_READ) as conn:
            row = conn.execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
        values = list(row) if row is not None else None
    if values is None:
        return None
    client = OAuthClient(**dict(zip(_CLIENT_KEYS, values, strict=True)))
    # As if loaded and expunged: a later Session.add would update, never insert.
    make_transient_to_detached(client)
    return client


def _kind(column: ColumnElement[Any]) -> str:
    if isinstance(column.type, JSON):
        return "json"
    if isinstance(column.type, DateTime):
        return "datetime"
    if isinstance(column.type, Boolean):
        return "bool"
    return "plain"


def _from_sqlite(kind: str, value: Any) -> Any:
    # How SQLAlchemy stores these types in SQLite: JSON as text, Boolean as 0/1,
    # DateTime as ISO text in UTC.
    if value is None or kind == "plain":
        return value
    if kind == "json":
        return json.loads(value)
    if kind == "bool":
        return bool(value)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


_CLIENT_KEYS = tuple(attr.key for attr in OAuthClient.__mapper__.column_attrs)
_CLIENT_BY_ID = select(*(attr.columns[0] for attr in OAuthClient.__mapper__.column_attrs)).where(
    OAuthClient.client_id == bindparam("client_id")
)
_CLIENT_KINDS = tuple(_kind(attr.columns[0]) for attr in OAuthClient.__mapper__.column_attrs)
_SQLITE_CLIENT_BY_ID = _CLIENT_BY_ID.compile(dialect=sqlite_dialect.dialect()).string
