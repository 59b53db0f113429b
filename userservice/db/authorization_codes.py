"""Authorization codes (stored as SHA-256 digests) and remembered consent."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from userservice.db.models import AuthorizationCode, Consent, GrantRevocation


class CodeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, code: AuthorizationCode) -> None:
        self.session.add(code)
        self.session.flush()

    def claim(self, code_digest: str, client_id: str, now: dt.datetime) -> bool:
        """Mark an unused, unexpired code of this client used. The conditional UPDATE
        lets exactly one of any number of concurrent redemptions win (B6)."""
        result = self.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.digest == code_digest,
                AuthorizationCode.client_id == client_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(used_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    def get(self, code_digest: str) -> AuthorizationCode | None:
        return self.session.get(AuthorizationCode, code_digest)

    def record_issued(self, code_digest: str, family_id: uuid.UUID | None, jti: str) -> None:
        self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.digest == code_digest)
            .values(token_family_id=family_id, access_jti=jti)
        )

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        query = select(AuthorizationCode.digest).where(
            AuthorizationCode.client_id == client_id, AuthorizationCode.nonce == nonce
        )
        return self.session.scalars(query).first() is not None

    def prune(self, before: dt.datetime) -> None:
        self.session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < before))

    def discard_unredeemed(self, user_id: uuid.UUID, client_id: str | None = None) -> None:
        """The user's codes not yet redeemed, for this client (a withdrawn grant)
        or, with None, for every client (everything of the user revoked)."""
        query = delete(AuthorizationCode).where(
            AuthorizationCode.user_id == user_id, AuthorizationCode.used_at.is_(None)
        )
        if client_id is not None:
            query = query.where(AuthorizationCode.client_id == client_id)
        self.session.execute(query)


class ConsentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: uuid.UUID, client_id: str) -> Consent | None:
        return self.session.get(Consent, (user_id, client_id))

    def grant(self, user_id: uuid.UUID, client_id: str, scope: str) -> None:
        existing = self.get(user_id, client_id)
        if existing is None:
            self.session.add(Consent(user_id=user_id, client_id=client_id, scope=scope))
        else:
            merged = set(existing.scope.split()) | set(scope.split())
            existing.scope = " ".join(sorted(merged))
        self.session.flush()

    def list_for_user(self, user_id: uuid.UUID) -> list[Consent]:
        query = select(Consent).where(Consent.user_id == user_id).order_by(Consent.client_id)
        return list(self.session.scalars(query))

    def revoke(self, user_id: uuid.UUID, client_id: str) -> bool:
        result = self.session.execute(
            delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
        )
        return bool(getattr(result, "rowcount", 0))

    def mark_revoked(self, user_id: uuid.UUID, client_id: str, not_before: int) -> None:
        existing = self.session.get(GrantRevocation, (user_id, client_id))
        if existing is None:
            self.session.add(
                GrantRevocation(user_id=user_id, client_id=client_id, not_before=not_before)
            )
        else:
            existing.not_before = max(existing.not_before, not_before)
        self.session.flush()

    def withdrawal_mark(self, user_id: uuid.UUID, client_id: str) -> int:
        """The `iat` from which this client's tokens for this user stand (0: never
        withdrawn)."""
        existing = self.session.get(GrantRevocation, (user_id, client_id))
        return existing.not_before if existing else 0
