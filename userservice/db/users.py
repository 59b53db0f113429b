"""User repository."""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, and_, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userservice.db.codec import utc as as_utc
from userservice.db.factors import MFA_REQUIRED_FOR, SIGN_IN_STATE, sign_in_state
from userservice.db.models import (
    GrantRevocation,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    User,
)
from userservice.db.statement import Runner, Statement
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
# Core statements for the authentication hot path, built at import and compiled once
# per backend (db/statement.py): no ORM identity map, no Session.
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
    """A UserRecord from the first nine columns (_RECORD_COLUMNS) of a row read
    through SQLAlchemy (SQLite gives naive datetimes: stored in UTC)."""
    values = list(row[:9])
    values[6] = as_utc(values[6])  # type: ignore[arg-type]
    values[7] = as_utc(values[7])  # type: ignore[arg-type]
    return UserRecord(*values)  # type: ignore[arg-type]


TOKEN_STANDING = Statement(
    _RECORD_AND_DENIAL, batch_keys=("user_id", "jti", "client_id", "iat", "grant_id")
)
CREDENTIALS = Statement(_CREDENTIALS_BY_EMAIL)


class UserReads:
    """The users port's hot reads, written once for every backend."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def user_for_token(self, key: TokenKey) -> TokenStanding | None:
        """The token's standing, or None when its user is gone."""
        row = await self._db.fetch_one(
            TOKEN_STANDING,
            {
                "user_id": key.user_id,
                "jti": key.jti,
                "client_id": key.client_id,
                "iat": key.iat,
                "grant_id": key.grant_id,
            },
        )
        if row is None:
            return None
        return TokenStanding(UserRecord(*row[:9]), bool(row[9]), bool(row[10]))

    async def credentials(self, email: str) -> tuple[UserRecord, str] | None:
        """The account and its password hash, for a login on the event loop."""
        row = await self._db.fetch_one(CREDENTIALS, {"email": email})
        return None if row is None else (UserRecord(*row[:9]), str(row[9]))

    async def second_factor_state(self, user_id: uuid.UUID) -> tuple[bool, str | None]:
        """After a correct password, on the event loop too: whether the account has
        a confirmed authenticator app, and the stored MFA policy (M4)."""
        return sign_in_state(
            await self._db.fetch_one(
                SIGN_IN_STATE, {"user_id": user_id, "policy": MFA_REQUIRED_FOR}
            )
        )


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

    def credentials(self, email: str) -> tuple[UserRecord, str] | None:
        row = self.session.execute(CREDENTIALS.sql, {"email": email}).first()
        return None if row is None else (_record(tuple(row)), str(row[9]))

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
