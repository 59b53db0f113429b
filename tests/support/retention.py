"""Rows on either side of every retention rule of `userservice prune`: for each kind,
the keys of rows whose purpose has passed and of rows still in use."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from tests.support.storage import FRONTEND, add_user
from userservice.db.backend import Database
from userservice.db.models import (
    AccountToken,
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    HalfLogin,
    OutboxMail,
    RefreshToken,
    RevokedAccessToken,
    SpentChallenge,
)

DAY = dt.timedelta(days=1)
KEYS: dict[str, Any] = {
    "audit_events": AuditEvent.id,
    "browser_sessions": BrowserSession.id_digest,
    "account_tokens": AccountToken.digest,
    "mail_outbox": OutboxMail.message_id,
    "revoked_access_tokens": RevokedAccessToken.jti,
    "authorization_codes": AuthorizationCode.digest,
    "refresh_tokens": RefreshToken.digest,
    "half_logins": HalfLogin.id_digest,
    "spent_challenges": SpentChallenge.digest,
}


def _session(key: str, user_id: uuid.UUID, now: dt.datetime, expires: dt.datetime) -> Any:
    return BrowserSession(
        id_digest=key,
        user_id=user_id,
        auth_time=0,
        created_at=now - DAY,
        last_seen_at=now - DAY,
        expires_at=expires,
        handle=key[:32],
    )


def _half_login(key: str, user_id: uuid.UUID, now: dt.datetime, expires: dt.datetime) -> Any:
    return HalfLogin(
        id_digest=key,
        user_id=user_id,
        step="verify",
        auth_time=0,
        attempts=0,
        created_at=now - dt.timedelta(minutes=5),
        expires_at=expires,
    )


def _link(key: str, user_id: uuid.UUID, now: dt.datetime, **values: Any) -> Any:
    fields = {"created_at": now - DAY, "expires_at": now + DAY, "used_at": None} | values
    return AccountToken(
        digest=key, purpose="reset_password", user_id=user_id, email="a@b", **fields
    )


def _mail(key: str, now: dt.datetime, **values: Any) -> Any:
    return OutboxMail(
        message_id=key,
        user_id=None,
        recipient="a@example.com",
        kind="notice",
        content="",
        created_at=now - 3 * DAY,
        next_attempt_at=now,
        **values,
    )


def _code(key: str, user_id: uuid.UUID, now: dt.datetime, expires: dt.datetime) -> Any:
    return AuthorizationCode(
        digest=key,
        client_id=FRONTEND,
        user_id=user_id,
        redirect_uri="https://app.example/cb",
        scope="openid",
        code_challenge="c" * 43,
        code_challenge_method="S256",
        auth_time=0,
        created_at=now - DAY,
        expires_at=expires,
    )


def _refresh(
    key: str, user_id: uuid.UUID, now: dt.datetime, family: uuid.UUID | None = None, **values: Any
) -> Any:
    return RefreshToken(
        digest=key,
        family_id=family or uuid.uuid4(),
        user_id=user_id,
        client_id=FRONTEND,
        scope="openid",
        issued_at=now - 100 * DAY,
        **values,
    )


def seed(
    db: Database, now: dt.datetime, retention_days: int
) -> dict[str, tuple[set[Any], set[Any]]]:
    """(past their purpose, still in use) keys of each kind, as stored."""
    user_id = add_user(db, f"{uuid.uuid4().hex}@example.com")
    revoked_family, live_family = uuid.uuid4(), uuid.uuid4()
    later = now + DAY
    old, live = now - (retention_days + 1) * DAY, now - (retention_days - 1) * DAY
    rows: dict[str, tuple[list[Any], list[Any]]] = {
        "browser_sessions": (
            [_session("s-expired", user_id, now, now - dt.timedelta(minutes=1))],
            [_session("s-live", user_id, now, now + dt.timedelta(hours=1))],
        ),
        "account_tokens": (
            [
                _link("t-used", user_id, now, used_at=now - dt.timedelta(minutes=1)),
                _link("t-expired", user_id, now, expires_at=now - dt.timedelta(minutes=1)),
            ],
            [_link("t-live", user_id, now)],
        ),
        "mail_outbox": (
            [
                _mail("m-sent", now, sent_at=now - 2 * DAY),
                _mail("m-failed", now, failed_at=now - 2 * DAY),
            ],
            [
                _mail("m-sent-today", now, sent_at=now - dt.timedelta(hours=1)),
                _mail("m-pending", now),
            ],
        ),
        "revoked_access_tokens": (
            [RevokedAccessToken(jti="j-expired", expires_at=now - dt.timedelta(seconds=1))],
            [RevokedAccessToken(jti="j-live", expires_at=now + dt.timedelta(minutes=10))],
        ),
        "authorization_codes": (
            [_code("c-expired", user_id, now, now - dt.timedelta(seconds=1))],
            [_code("c-live", user_id, now, now + dt.timedelta(minutes=5))],
        ),
        # A family goes as a whole once past its absolute end or wholly revoked.
        "refresh_tokens": (
            [
                _refresh("r-expired", user_id, now, expires_at=now - dt.timedelta(seconds=1)),
                _refresh(
                    "r-revoked-1", user_id, now, revoked_family, expires_at=later, revoked_at=now
                ),
                _refresh(
                    "r-revoked-2", user_id, now, revoked_family, expires_at=later, revoked_at=now
                ),
            ],
            # Rotated away but its family still alive: a replay must still be caught.
            [
                _refresh("r-rotated", user_id, now, live_family, expires_at=later, revoked_at=now),
                _refresh("r-current", user_id, now, live_family, expires_at=later),
            ],
        ),
        "half_logins": (
            [_half_login("h-expired", user_id, now, now - dt.timedelta(seconds=1))],
            [_half_login("h-live", user_id, now, now + dt.timedelta(minutes=5))],
        ),
        "spent_challenges": (
            [SpentChallenge(digest="c-expired", expires_at=now - dt.timedelta(seconds=1))],
            [SpentChallenge(digest="c-live", expires_at=now + dt.timedelta(minutes=5))],
        ),
    }
    events = (
        [AuditEvent(occurred_at=old, event="login.succeeded", details="{}")],
        [AuditEvent(occurred_at=live, event="login.succeeded", details="{}")],
    )
    with db.unit_of_work() as uow:
        uow.add_all([row for pair in rows.values() for side in pair for row in side])
        uow.add_all(events[0] + events[1])
        uow.flush()
        keys = {"audit_events": ({e.id for e in events[0]}, {e.id for e in events[1]})}
    for kind, (gone, kept) in rows.items():
        column = KEYS[kind].key
        keys[kind] = ({getattr(r, column) for r in gone}, {getattr(r, column) for r in kept})
    return keys


def stored_keys(db: Database, kind: str) -> set[Any]:
    with db.unit_of_work(read_only=True) as uow:
        return set(uow.scalars(select(KEYS[kind])))
