"""User repository."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, Uuid, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userservice.db.engine import Database, as_utc, sqlite_utc
from userservice.db.lookup_batch import batched_statement
from userservice.db.models import (
    GrantRevocation,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    User,
)
from userservice.errors import EmailTaken
from userservice.records import TokenKey, TokenStanding, UserRecord


def user_record(user: User) -> UserRecord:
    return UserRecord(
        user.id,
        user.email,
        user.display_name,
        user.is_active,
        user.is_admin,
        user.email_verified,
        as_utc(user.created_at),
        as_utc(user.updated_at),
        user.tokens_valid_after,
    )


_RECORD_COLUMNS = (
    User.id,
    User.email,
    User.display_name,
    User.is_active,
    User.is_admin,
    User.email_verified,
    User.created_at,
    User.updated_at,
    User.tokens_valid_after,
)
# Prebuilt Core statements for the authentication hot path: no ORM identity map,
# no Session, and SQLAlchemy's compiled cache is hit on every call.
#
# One round trip for the bearer check: the user row, whether the token's client is a
# first-party one (NULL: the client is gone, and its tokens with it), and whether the
# token is revoked: its jti deny-listed, its grant's refresh family revoked (S5:
# revoking a refresh token ends the access tokens of its grant too), or, for a token
# with no refresh family, the user's withdrawal of that client's grant after the
# token was issued.
_FIRST_PARTY = (
    select(OAuthClient.is_first_party)
    .where(OAuthClient.client_id == bindparam("client_id"))
    .scalar_subquery()
)
_GRANT_ID = bindparam("grant_id", type_=Uuid)
_RECORD_AND_DENIAL = select(
    *_RECORD_COLUMNS,
    or_(
        select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == bindparam("jti")).exists(),
        ~select(OAuthClient.client_id)
        .where(OAuthClient.client_id == bindparam("client_id"))
        .exists(),
        and_(
            _GRANT_ID.is_(None),
            select(GrantRevocation.not_before)
            .where(
                GrantRevocation.user_id == bindparam("user_id"),
                GrantRevocation.client_id == bindparam("client_id"),
                GrantRevocation.not_before > bindparam("iat"),
            )
            .exists(),
        ),
        and_(
            _GRANT_ID.is_not(None),
            ~select(RefreshToken.id)
            .where(RefreshToken.family_id == _GRANT_ID, RefreshToken.revoked_at.is_(None))
            .exists(),
        ),
    ).label("revoked"),
    _FIRST_PARTY.label("first_party"),
).where(User.id == bindparam("user_id"))
_CREDENTIALS_BY_EMAIL = select(*_RECORD_COLUMNS, User.password_hash).where(
    User.email == bindparam("email")
)


def _record(row: tuple[object, ...]) -> UserRecord:
    values = list(row[:9])
    values[6] = as_utc(values[6])  # type: ignore[arg-type]
    values[7] = as_utc(values[7])  # type: ignore[arg-type]
    return UserRecord(*values)  # type: ignore[arg-type]


def _key_params(key: TokenKey) -> dict[str, object]:
    return {
        "user_id": key.user_id,
        "jti": key.jti,
        "client_id": key.client_id,
        "iat": key.iat,
        "grant_id": key.grant_id,
    }


def _standing(user: UserRecord, revoked: object, first_party: object) -> TokenStanding:
    return TokenStanding(user, bool(revoked), bool(first_party))


def lookup_for_token(db: Database, key: TokenKey) -> TokenStanding | None:
    """The token's standing, or None when its user is gone."""
    if db.is_sqlite:
        return _lookup_for_token_sqlite(db, key)
    with db.engine.connect() as conn:
        row = conn.execute(_RECORD_AND_DENIAL, _key_params(key)).first()
    return _standing(_record(tuple(row)), row[9], row[10]) if row else None


async def lookup_for_token_async(db: Database, key: TokenKey) -> TokenStanding | None:
    """lookup_for_token for the event loop: inline on SQLite (a local file answers
    in microseconds), one awaited round trip on PostgreSQL."""
    if db.is_sqlite:
        return _lookup_for_token_sqlite(db, key)
    if not _storable(key.jti, key.client_id, key.iat):
        # PostgreSQL would refuse the whole batched statement (NUL in text, iat out
        # of BIGINT), failing the other requests of the batch: no such token here.
        return None
    batcher = db.pg_batched(_PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)
    row = await batcher.get((key.user_id, key.jti, key.client_id, key.iat, key.grant_id))
    if row is None:
        return None
    # psycopg returns UUID, bool and timezone-aware datetimes itself.
    return _standing(UserRecord(*row[:9]), row[9], row[10])


_PG_RECORD_AND_DENIAL = _RECORD_AND_DENIAL.compile(
    dialect=postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]
).string


def _storable(jti: str, client_id: str, iat: int) -> bool:
    return "\x00" not in jti and "\x00" not in client_id and -(2**63) <= iat < 2**63


# The same statement for many keys at once (db/lookup_batch.py).
_PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS = batched_statement(
    _PG_RECORD_AND_DENIAL,
    (
        ("user_id", "UUID"),
        ("jti", "VARCHAR"),
        ("client_id", "VARCHAR"),
        ("iat", "BIGINT"),
        ("grant_id", "UUID"),
    ),
)


# The same statement, compiled once for SQLite's qmark style and run on the thread's
# plain sqlite3 connection (Database.sqlite_read). Column conversions follow how
# SQLAlchemy stores these types in SQLite: Uuid as 32 hex digits, Boolean as 0/1,
# DateTime as ISO text in UTC.
_SQLITE_RECORD_AND_DENIAL = _RECORD_AND_DENIAL.compile(dialect=sqlite_dialect.dialect())
_SQLITE_PARAM_ORDER = tuple(_SQLITE_RECORD_AND_DENIAL.positiontup or ())


def _lookup_for_token_sqlite(db: Database, key: TokenKey) -> TokenStanding | None:
    values = {
        **_key_params(key),
        "user_id": key.user_id.hex,
        "grant_id": None if key.grant_id is None else key.grant_id.hex,
    }
    rows = db.sqlite_read(
        _SQLITE_RECORD_AND_DENIAL.string, [values[name] for name in _SQLITE_PARAM_ORDER]
    )
    if not rows:
        return None
    return _standing(sqlite_record(rows[0]), rows[0][9], rows[0][10])


def sqlite_record(row: tuple[Any, ...]) -> UserRecord:
    """A UserRecord from the first nine columns (_RECORD_COLUMNS) of a row read on a
    plain sqlite3 connection."""
    return UserRecord(
        uuid.UUID(row[0]),
        row[1],
        row[2],
        bool(row[3]),
        bool(row[4]),
        bool(row[5]),
        sqlite_utc(row[6]),
        sqlite_utc(row[7]),
        int(row[8]),
    )


def lookup_credentials(engine: Engine, email: str) -> tuple[UserRecord, str] | None:
    with engine.connect() as conn:
        row = conn.execute(_CREDENTIALS_BY_EMAIL, {"email": email}).first()
    return (_record(tuple(row)), str(row[9])) if row else None


_SQLITE_CREDENTIALS = _CREDENTIALS_BY_EMAIL.compile(dialect=sqlite_dialect.dialect()).string
_PG_CREDENTIALS = _CREDENTIALS_BY_EMAIL.compile(
    dialect=postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]
).string


async def lookup_credentials_async(db: Database, email: str) -> tuple[UserRecord, str] | None:
    """lookup_credentials for the event loop (the login path): inline on
    SQLite, one awaited round trip on PostgreSQL; no pool checkout, no thread."""
    if db.is_sqlite:
        rows = db.sqlite_read(_SQLITE_CREDENTIALS, (email,))
        return (sqlite_record(rows[0]), str(rows[0][9])) if rows else None
    found = await db.pg_read(_PG_CREDENTIALS, {"email": email})
    # psycopg returns UUID, bool and timezone-aware datetimes itself.
    return (UserRecord(*found[0][:9]), str(found[0][9])) if found else None


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, user: User) -> User:
        self.session.add(user)
        try:
            # A savepoint keeps the outer unit of work usable after a duplicate.
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise EmailTaken("An account with this email already exists.") from None
        return user

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def get_for_update(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id, with_for_update=True)

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalars(select(User).where(User.email == email)).first()

    def flush_changes(self) -> None:
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise EmailTaken("An account with this email already exists.") from None

    def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        self.session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
        )

    def delete(self, user_id: uuid.UUID) -> bool:
        result = self.session.execute(delete(User).where(User.id == user_id))
        return bool(getattr(result, "rowcount", 0))
