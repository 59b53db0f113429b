"""Deny list of revoked JWT access tokens (by jti), kept until the token expires."""

from __future__ import annotations

import contextlib
import datetime as dt

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from userservice.db.models import RevokedAccessToken


def deny(session: Session, jti: str, expires_at: dt.datetime) -> None:
    # Revoked twice is fine: RFC 7009 §2.2 answers 200 either way.
    with contextlib.suppress(IntegrityError), session.begin_nested():
        session.add(RevokedAccessToken(jti=jti, expires_at=expires_at))
        session.flush()


def prune(session: Session, now: dt.datetime) -> None:
    # An expired token is refused by its `exp` anyway; its row is no longer needed.
    session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < now))
