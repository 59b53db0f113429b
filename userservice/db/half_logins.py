"""Half-logins (M6): the password passed, the second factor not yet. The only SQL
of services/half_logins.py. Stored by the SHA-256 of the browser's random id."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from userservice.db.models import HalfLogin, User
from userservice.db.users import user_record
from userservice.records import UserRecord


class HalfLoginRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        id_digest: str,
        user_id: uuid.UUID,
        step: str,
        auth_time: int,
        next_path: str | None,
        now: dt.datetime,
        expires_at: dt.datetime,
    ) -> None:
        self.session.add(
            HalfLogin(
                id_digest=id_digest,
                user_id=user_id,
                step=step,
                auth_time=auth_time,
                next_path=next_path,
                attempts=0,
                created_at=now,
                expires_at=expires_at,
            )
        )
        self.session.flush()

    def find(self, id_digest: str, now: dt.datetime) -> tuple[HalfLogin, UserRecord] | None:
        """The unexpired half-login and its user (None once the user is deleted:
        the row went with it, ON DELETE CASCADE)."""
        row = self.session.execute(
            select(HalfLogin, User)
            .join(User, User.id == HalfLogin.user_id)
            .where(HalfLogin.id_digest == id_digest, HalfLogin.expires_at > now)
        ).first()
        return None if row is None else (row[0], user_record(row[1]))

    def count_failure(self, id_digest: str) -> int | None:
        """One more wrong code; the count so far, None when there is no such row.
        An atomic increment: concurrent wrong codes each count."""
        result = self.session.execute(
            update(HalfLogin)
            .where(HalfLogin.id_digest == id_digest)
            .values(attempts=HalfLogin.attempts + 1)
            .returning(HalfLogin.attempts)
        ).first()
        return None if result is None else int(result[0])

    def delete(self, id_digest: str) -> bool:
        result = self.session.execute(delete(HalfLogin).where(HalfLogin.id_digest == id_digest))
        return bool(getattr(result, "rowcount", 0))

    def delete_for_user(self, user_id: uuid.UUID) -> int:
        result = self.session.execute(delete(HalfLogin).where(HalfLogin.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)
