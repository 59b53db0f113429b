"""Passkeys' storage (M9): the credentials of each account, their sign counters,
and the challenges already answered. The only SQL of services/passkeys.py.

The counter and the spent challenge are each decided by ONE statement whose row
count answers (a conditional UPDATE, an INSERT on a primary key): of any number
of concurrent answers exactly one passes, on PostgreSQL and on SQLite alike."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userservice.db.models import Passkey, SpentChallenge
from userservice.errors import Conflict


class PasskeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, passkey: Passkey) -> None:
        """Store a new passkey; Conflict when its credential id is registered
        already (to this account or another), leaving the unit of work usable."""
        try:
            with self.session.begin_nested():
                self.session.add(passkey)
                self.session.flush()
        except IntegrityError:
            raise Conflict("This passkey is registered already.") from None

    def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        return self.session.execute(
            select(Passkey).where(Passkey.credential_id == credential_id)
        ).scalar_one_or_none()

    def get(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
        return self.session.execute(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        ).scalar_one_or_none()

    def list_for_user(self, user_id: uuid.UUID) -> list[Passkey]:
        """Oldest first (the id breaks ties of one instant)."""
        return list(
            self.session.execute(
                select(Passkey)
                .where(Passkey.user_id == user_id)
                .order_by(Passkey.created_at, Passkey.id)
            ).scalars()
        )

    def credential_ids_for_user(self, user_id: uuid.UUID) -> list[tuple[bytes, str | None]]:
        """(credential id, transports) of each of the account's passkeys: what
        excludeCredentials / allowCredentials name."""
        rows = self.session.execute(
            select(Passkey.credential_id, Passkey.transports)
            .where(Passkey.user_id == user_id)
            .order_by(Passkey.created_at, Passkey.id)
        ).all()
        return [(bytes(row[0]), row[1]) for row in rows]

    def advance(
        self, passkey_id: uuid.UUID, new_count: int, backed_up: bool, now: dt.datetime
    ) -> bool:
        """Record a use with the authenticator's signature counter `new_count`.
        WebAuthn L2 §6.1.1: when both the stored and the new counter are zero the
        authenticator keeps none; otherwise the new one must be larger, or two
        copies of the key exist (a clone). False (nothing changed) then."""
        # Zero is never "larger": it passes only against a stored zero.
        grows = Passkey.sign_count == 0 if new_count == 0 else Passkey.sign_count < new_count
        result = self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, grows)
            .values(sign_count=new_count, backed_up=backed_up, last_used_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    def rename(self, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str) -> bool:
        result = self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
            .values(name=name)
        )
        return getattr(result, "rowcount", 0) == 1

    def delete(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> bool:
        result = self.session.execute(
            delete(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        )
        return getattr(result, "rowcount", 0) == 1


def spend_challenge(session: Session, digest: str, expires_at: dt.datetime) -> bool:
    """Mark a challenge answered; False when it was answered before (including by
    a concurrent answer: the primary key lets one INSERT win)."""
    try:
        with session.begin_nested():
            session.add(SpentChallenge(digest=digest, expires_at=expires_at))
            session.flush()
    except IntegrityError:
        return False
    return True
