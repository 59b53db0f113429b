"""Single-use account tokens (email verification, password reset, email change and
its undo), stored only as SHA-256 digests.

A token is used by one conditional UPDATE ... RETURNING: of any number of
concurrent uses exactly one matches (the UPDATE takes the row's lock before it
re-reads used_at on PostgreSQL; SQLite runs one writer at a time), and a refused
use changes nothing (E8)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from userservice.db.models import AccountToken, User

# What a use of a token proves: which account, and the address the link went to.
Holder = tuple[uuid.UUID, str]


class Addressee(NamedTuple):
    """What a mail to an account needs to know of it."""

    user_id: uuid.UUID
    email: str
    email_verified: bool
    is_active: bool
    locale: str | None


def addressee(session: Session, email: str) -> Addressee | None:
    """The account of a normalized address, or None."""
    row = session.execute(
        select(User.id, User.email, User.email_verified, User.is_active, User.locale).where(
            User.email == email
        )
    ).first()
    return None if row is None else Addressee(*row)


def reserved(session: Session, email: str, purpose: str, now: dt.datetime) -> bool:
    """Whether an unused, unexpired link of `purpose` names the normalized address
    (services/email_change.py: the undo link of an email change reserves the old
    address for its former owner, L21)."""
    found = session.scalar(
        select(AccountToken.digest)
        .where(
            AccountToken.email == email,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .limit(1)
    )
    return found is not None


class AccountTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        token_digest: str,
        purpose: str,
        user_id: uuid.UUID,
        email: str,
        now: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        self.session.add(
            AccountToken(
                digest=token_digest,
                purpose=purpose,
                user_id=user_id,
                email=email,
                created_at=now,
                expires_at=expires_at,
            )
        )
        self.session.flush()

    def usable(self, token_digest: str, purpose: str, now: dt.datetime) -> Holder | None:
        """The holder of an unused, unexpired token of this purpose, without using it
        (a check before a password is hashed for it)."""
        row = self.session.execute(
            select(AccountToken.user_id, AccountToken.email).where(
                AccountToken.digest == token_digest,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def use(self, token_digest: str, purpose: str, now: dt.datetime) -> Holder | None:
        """Mark the token used and return its holder; None (nothing changed) when it
        is unknown, used, expired or of another purpose."""
        row = self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.digest == token_digest,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken.user_id, AccountToken.email)
        ).first()
        return None if row is None else (row[0], row[1])

    def discard(self, user_id: uuid.UUID, *purposes: str) -> None:
        """Every token of these purposes the user holds, used or not."""
        self.session.execute(
            delete(AccountToken).where(
                AccountToken.user_id == user_id, AccountToken.purpose.in_(purposes)
            )
        )

    def pending(self, user_id: uuid.UUID, purpose: str, now: dt.datetime) -> bool:
        """Whether the user holds an unused, unexpired token of this purpose."""
        found = self.session.scalar(
            select(AccountToken.digest)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .limit(1)
        )
        return found is not None

    def prune(self, before: dt.datetime) -> None:
        self.session.execute(delete(AccountToken).where(AccountToken.expires_at < before))
