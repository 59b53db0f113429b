"""OAuth client repository."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, DateTime, and_, bindparam, delete, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from userservice.db.engine import SINGLE_READ, Database
from userservice.db.lookup_batch import batched_statement
from userservice.db.models import OAuthClient, RevokedAccessToken
from userservice.records import StoredClient

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


def _plausible(client_id: str) -> bool:
    # No client id is longer than the column or holds NUL, which PostgreSQL refuses
    # in a query (DataError, a 503 instead of "no such client").
    return len(client_id) <= MAX_CLIENT_ID_LENGTH and "\x00" not in client_id


def load_client(db: Database, client_id: str) -> StoredClient | None:
    """One SELECT and no ORM Session; on SQLite on the thread's plain sqlite3
    connection, like the bearer check."""
    if not _plausible(client_id):
        return None
    if db.is_sqlite:
        return _sqlite_client(db, client_id)
    with db.engine.connect().execution_options(**SINGLE_READ) as conn:
        row = conn.execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
    return StoredClient(*row) if row is not None else None


async def load_client_async(db: Database, client_id: str) -> StoredClient | None:
    """load_client for the event loop: inline on SQLite, one awaited round trip on
    PostgreSQL (no pool checkout, pre-ping, BEGIN or ROLLBACK)."""
    if not _plausible(client_id):
        return None
    if db.is_sqlite:
        return _sqlite_client(db, client_id)
    # psycopg itself returns lists for JSON, bool and aware datetimes.
    # Batched with the lookups of the same moment (db/lookup_batch.py).
    row = await db.pg_batched(_PG_CLIENTS_BY_ID, _PG_CLIENT_ARRAYS).get((client_id,))
    return None if row is None else StoredClient(*row)


async def client_token_alive(db: Database, client_id: str, jti: str) -> bool:
    """A client_credentials token lives while its client exists and its jti is not on
    the deny list: one read."""
    if not _plausible(client_id):
        return False
    if db.is_sqlite:
        rows = db.sqlite_read(_SQLITE_CLIENT_TOKEN_ALIVE, [client_id, jti])
    else:
        rows = await db.pg_read(_PG_CLIENT_TOKEN_ALIVE, {"client_id": client_id, "jti": jti})
    return bool(rows and rows[0][0])


def _sqlite_client(db: Database, client_id: str) -> StoredClient | None:
    rows = db.sqlite_read(_SQLITE_CLIENT_BY_ID, [client_id])
    if not rows:
        return None
    return StoredClient(
        *(_from_sqlite(kind, value) for kind, value in zip(_CLIENT_KINDS, rows[0], strict=True))
    )


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


MAX_CLIENT_ID_LENGTH = 64
_CLIENT_KEYS = tuple(field.name for field in fields(StoredClient))
_CLIENT_COLUMNS = tuple(OAuthClient.__table__.c[key] for key in _CLIENT_KEYS)
_CLIENT_BY_ID = select(*_CLIENT_COLUMNS).where(OAuthClient.client_id == bindparam("client_id"))
_CLIENT_KINDS = tuple(_kind(column) for column in _CLIENT_COLUMNS)
_CLIENT_TOKEN_ALIVE = select(
    and_(
        select(OAuthClient.client_id)
        .where(OAuthClient.client_id == bindparam("client_id"))
        .exists(),
        ~select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == bindparam("jti")).exists(),
    )
)
_SQLITE_DIALECT = sqlite_dialect.dialect()
_PG_DIALECT = postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]
_SQLITE_CLIENT_BY_ID = _CLIENT_BY_ID.compile(dialect=_SQLITE_DIALECT).string
_PG_CLIENT_BY_ID = _CLIENT_BY_ID.compile(dialect=_PG_DIALECT).string
_PG_CLIENTS_BY_ID, _PG_CLIENT_ARRAYS = batched_statement(
    _PG_CLIENT_BY_ID, (("client_id", "VARCHAR"),)
)
_SQLITE_CLIENT_TOKEN_ALIVE = _CLIENT_TOKEN_ALIVE.compile(dialect=_SQLITE_DIALECT).string
_PG_CLIENT_TOKEN_ALIVE = _CLIENT_TOKEN_ALIVE.compile(dialect=_PG_DIALECT).string
