"""Refresh-token repository. Tokens are stored only as SHA-256 digests."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import Label

from userservice.db.engine import Database, sqlite_utc
from userservice.db.models import RefreshToken, User

_TOKENS = cast(Table, RefreshToken.__table__)
_USERS = cast(Table, User.__table__)


@dataclass(frozen=True, slots=True)
class ClaimedToken:
    """The row a rotation just retired, with its owner's standing (one round trip)."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    user_active: bool | None  # None: the user row is gone
    tokens_valid_after: int
    auth_time: int | None


@dataclass(frozen=True, slots=True)
class TokenOwner:
    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str


def owner_column(name: str) -> Label[Any]:
    # Correlated scalar subquery: RETURNING may hold subqueries on SQLite (>= 3.35)
    # and PostgreSQL, so the owner's standing comes back with the claim itself.
    return (
        select(_USERS.c[name])
        .where(_USERS.c.id == _TOKENS.c.user_id)
        .scalar_subquery()
        .label(f"user_{name}")
    )


# Prebuilt Core statements for the refresh hot path: no ORM identity map or
# flush, and SQLAlchemy's compiled cache is hit on every call.
#
# The claim is one conditional UPDATE: it takes the row's write lock before any read,
# so of concurrent redemptions exactly one sees its row come back (no read-then-write
# race), and RETURNING hands that winner everything the rotation needs.
_CLAIM = (
    update(_TOKENS)
    .where(_TOKENS.c.digest == bindparam("token_digest"), _TOKENS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"), last_used_at=bindparam("now"))
    .returning(
        _TOKENS.c.family_id,
        _TOKENS.c.user_id,
        _TOKENS.c.client_id,
        _TOKENS.c.scope,
        _TOKENS.c.issued_at,
        _TOKENS.c.expires_at,
        owner_column("is_active"),
        owner_column("tokens_valid_after"),
        _TOKENS.c.auth_time,
    )
)
_OWNER = select(_TOKENS.c.family_id, _TOKENS.c.user_id, _TOKENS.c.client_id).where(
    _TOKENS.c.digest == bindparam("token_digest")
)
_INSERT = insert(_TOKENS)


# The columns a successor (or a new family's first token) is inserted with.
SUCCESSOR_COLUMNS = (
    "digest",
    "family_id",
    "user_id",
    "client_id",
    "scope",
    "issued_at",
    "expires_at",
    "auth_time",
)
# On SQLite the two rotation statements run straight on the transaction's sqlite3
# connection: SQLAlchemy's execution path around them cost more than the SQL
# (profiled in the group-commit writer). Values are stored as SQLAlchemy stores
# them: Uuid as 32 hex digits, DateTime as naive UTC text.
_SQLITE_CLAIM = _CLAIM.compile(dialect=sqlite_dialect.dialect())
_SQLITE_INSERT = _INSERT.values({name: bindparam(name) for name in SUCCESSOR_COLUMNS}).compile(
    dialect=sqlite_dialect.dialect()
)


def _sqlite_stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_execute(
    conn: Connection, compiled: SQLCompiler, values: dict[str, object]
) -> tuple[Any, ...] | None:
    params = tuple(values[name] for name in compiled.positiontup or ())
    raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
    try:
        row: tuple[Any, ...] | None = raw.execute(compiled.string, params).fetchone()
    except sqlite3.Error as exc:  # surfaced like every other query's error (503, not 500)
        raise DBAPIError.instance(compiled.string, params, exc, sqlite3.Error) from None
    return row


def claim_for_rotation(
    conn: Connection, token_digest: str, now: dt.datetime
) -> ClaimedToken | None:
    """Retire an active token; None if it is unknown or already retired."""
    if conn.dialect.name == "sqlite":
        stamp = _sqlite_stamp(now)
        row = _sqlite_execute(conn, _SQLITE_CLAIM, {"token_digest": token_digest, "now": stamp})
        if row is None:
            return None
        return ClaimedToken(
            uuid.UUID(row[0]),
            uuid.UUID(row[1]),
            row[2],
            row[3],
            sqlite_utc(row[4]),
            sqlite_utc(row[5]),
            None if row[6] is None else bool(row[6]),
            row[7] or 0,
            row[8],
        )
    found = conn.execute(_CLAIM, {"token_digest": token_digest, "now": now}).first()
    if found is None:
        return None
    return ClaimedToken(
        found[0],
        found[1],
        found[2],
        found[3],
        found[4],
        found[5],
        None if found[6] is None else bool(found[6]),
        found[7] or 0,
        found[8],
    )


def owner_of(conn: Connection, token_digest: str) -> TokenOwner | None:
    row = conn.execute(_OWNER, {"token_digest": token_digest}).first()
    return None if row is None else TokenOwner(row[0], row[1], row[2])


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """A refresh token's row as issued (its digest only, never the token)."""

    digest: str
    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    # When the user authenticated; every rotation carries it forward unchanged.
    auth_time: int | None = None

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in SUCCESSOR_COLUMNS}

    def sqlite_values(self) -> dict[str, object]:
        return {
            **self.values(),
            "family_id": self.family_id.hex,
            "user_id": self.user_id.hex,
            "issued_at": _sqlite_stamp(self.issued_at),
            "expires_at": _sqlite_stamp(self.expires_at),
        }


def insert_token(conn: Connection, token: NewRefreshToken) -> None:
    if conn.dialect.name == "sqlite":
        _sqlite_execute(conn, _SQLITE_INSERT, token.sqlite_values())
        return
    conn.execute(_INSERT, token.values())


# RETURNING: the event loop's reader fetches a result from every statement.
# ON CONFLICT DO NOTHING: the reader runs a statement once more on a new connection
# when a reused one turns out dead, and the first attempt may have committed; the
# digest is 256 random bits, so a row already there can only be this one.
_PG_INSERT = (
    pg_insert(_TOKENS)
    .values({name: bindparam(name) for name in SUCCESSOR_COLUMNS})
    .on_conflict_do_nothing(index_elements=[_TOKENS.c.digest])
    .returning(_TOKENS.c.digest)
    .compile(dialect=postgresql_psycopg.dialect())  # type: ignore[no-untyped-call]
    .string
)


async def insert_token_async(db: Database, token: NewRefreshToken) -> None:
    """insert_token for the event loop (the login path): on SQLite it joins
    the writer thread's next group commit; on PostgreSQL it is one autocommit round
    trip. No Session, no BEGIN/COMMIT round trips, no threadpool hop."""
    if db.is_sqlite:
        await db.write_batched(lambda conn: insert_token(conn, token))
        return
    await db.pg_read(_PG_INSERT, token.values())


def revoke_family(conn: Connection, family_id: uuid.UUID, now: dt.datetime) -> None:
    conn.execute(
        update(_TOKENS)
        .where(_TOKENS.c.family_id == family_id, _TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


class RefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        self.session.flush()

    def get_by_digest(self, digest: str) -> RefreshToken | None:
        query = select(RefreshToken).where(RefreshToken.digest == digest)
        return self.session.scalars(query).first()

    def claim(self, digest: str, now: dt.datetime) -> bool:
        """Atomically retire an active token. Exactly one of any number of concurrent
        callers wins: the conditional UPDATE is the lock (no read-then-write race)."""
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.digest == digest, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, last_used_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    def revoke_family(self, family_id: uuid.UUID, now: dt.datetime) -> None:
        revoke_family(self.session.connection(), family_id, now)

    def revoke_all_for_user(self, user_id: uuid.UUID, now: dt.datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_for_client(self, user_id: uuid.UUID, client_id: str, now: dt.datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.client_id == client_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
