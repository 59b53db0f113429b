"""Refresh-token repository. Tokens are stored only as SHA-256 digests."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userservice.db.models import RefreshToken


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
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

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
