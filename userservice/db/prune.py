"""Deleting rows whose purpose has passed: the only SQL of `userservice prune`.

Each kind of row is deleted in batches, each batch its own short transaction, so
that pruning a large backlog never holds a lock (or SQLite's one writer) for long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from userservice.db.models import (
    AccountToken,
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    OutboxMail,
    RefreshToken,
    RevokedAccessToken,
)
from userservice.db.ports import Storage

BATCH = 500


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these are deleted; `now` ends whatever has expired."""

    now: dt.datetime
    audit_before: dt.datetime
    settled_mail_before: dt.datetime


Condition = Callable[[Cutoffs], ColumnElement[bool]]

# Each kind: its key column and which rows have served their purpose.
_KINDS: dict[str, tuple[InstrumentedAttribute[Any], Condition]] = {
    "audit_events": (AuditEvent.id, lambda c: AuditEvent.occurred_at < c.audit_before),
    "browser_sessions": (BrowserSession.id_digest, lambda c: BrowserSession.expires_at < c.now),
    # A used link is refused whether its row is there or not.
    "account_tokens": (
        AccountToken.digest,
        lambda c: or_(AccountToken.used_at.is_not(None), AccountToken.expires_at < c.now),
    ),
    # Sent or refused for good; the delay leaves the operator a day to look.
    "mail_outbox": (
        OutboxMail.id,
        lambda c: or_(
            OutboxMail.sent_at < c.settled_mail_before,
            OutboxMail.failed_at < c.settled_mail_before,
        ),
    ),
    # An expired token is refused by its `exp`; its deny-list row is no longer needed.
    "revoked_access_tokens": (
        RevokedAccessToken.jti,
        lambda c: RevokedAccessToken.expires_at < c.now,
    ),
    "authorization_codes": (
        AuthorizationCode.digest,
        lambda c: AuthorizationCode.expires_at < c.now,
    ),
    # Rotated tokens stay until their family's absolute expiry: a replay of one must
    # still be recognised and revoke the family.
    "refresh_tokens": (RefreshToken.id, lambda c: RefreshToken.expires_at < c.now),
}


def _batch(db: Storage, key: InstrumentedAttribute[Any], condition: ColumnElement[bool]) -> int:
    chosen = select(key).where(condition).limit(BATCH).scalar_subquery()
    with db.unit_of_work() as uow:
        result = uow.execute(
            delete(key.class_).where(key.in_(chosen)).execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def prune(db: Storage, cutoffs: Cutoffs) -> dict[str, int]:
    """How many rows of each kind were deleted."""
    counts: dict[str, int] = {}
    for kind, (key, condition) in _KINDS.items():
        total = 0
        while (deleted := _batch(db, key, condition(cutoffs))) > 0:
            total += deleted
            if deleted < BATCH:
                break
        counts[kind] = total
    return counts
