"""Deleting rows whose purpose has passed: the only SQL of pruning (`userservice
prune` and the background pruner, services/pruning.py).

Each kind of row is deleted in batches, each batch its own short transaction, so
that pruning a large backlog never holds a lock (or SQLite's one writer) for long.
A batch is the next BATCH matching rows in key order after the previous batch's
last key (keyset): each batch walks the key index from where the last one ended,
so a backlog costs time in proportion to its size (restarting at the first key
made PostgreSQL re-read every dead row of the earlier batches: quadratic), and
only that one key crosses into Python (memory stays flat however many rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

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
from userservice.db.ports import Storage

BATCH = 500


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these are deleted; `now` ends whatever has expired."""

    now: dt.datetime
    audit_before: dt.datetime
    settled_mail_before: dt.datetime


Condition = Callable[[Cutoffs], ColumnElement[bool]]
_SIBLING = aliased(RefreshToken)


def _refresh_family_over(c: Cutoffs) -> ColumnElement[bool]:
    # A family goes as a whole, once it can never be used again: past its absolute
    # end (every row carries the family's), or revoked (no row left unrevoked).
    # Until then its rotated tokens stay, so that the replay of one is still
    # recognised and revokes the family (reuse detection, RFC 9700 §4.14.2).
    # A scalar subquery, not NOT EXISTS: under the OR, PostgreSQL hashed every live
    # token of the table for each batch (quadratic: 39 s for 90k rows); this one
    # is an index probe by family per row.
    live_sibling = (
        select(literal(1))
        .where(_SIBLING.family_id == RefreshToken.family_id, _SIBLING.revoked_at.is_(None))
        .limit(1)
        .correlate(RefreshToken)
        .scalar_subquery()
    )
    return or_(
        RefreshToken.expires_at < c.now,
        and_(RefreshToken.revoked_at.is_not(None), live_sibling.is_(None)),
    )


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
    "refresh_tokens": (RefreshToken.id, _refresh_family_over),
    # Past its few minutes a half-login is refused whether its row is there or not (M6).
    "half_logins": (HalfLogin.id_digest, lambda c: HalfLogin.expires_at < c.now),
    # An expired challenge is refused by its own expiry; its spent row is no longer needed.
    "spent_challenges": (SpentChallenge.digest, lambda c: SpentChallenge.expires_at < c.now),
}


def _batch(
    db: Storage, key: InstrumentedAttribute[Any], condition: ColumnElement[bool], after: Any
) -> tuple[int, Any]:
    """Deletes the next BATCH matching rows after key `after` (None: from the start):
    (how many, the last key of the batch, or None once no matching row is left)."""
    window = select(key).where(condition)
    if after is not None:
        window = window.where(key > after)
    chosen = window.order_by(key).limit(BATCH).subquery()
    # Bounded by its size, not by the serving connections' statement_timeout (N8).
    with db.unit_of_work(unbounded=True) as uow:
        found, upto = uow.execute(select(func.count(), func.max(chosen.c[0]))).one()
        if not found:
            return 0, None
        bounds = [condition, key <= upto] + ([key > after] if after is not None else [])
        result = uow.execute(
            delete(key.class_).where(*bounds).execution_options(synchronize_session=False)
        )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    return deleted, (upto if found == BATCH else None)


def prune(
    db: Storage, cutoffs: Cutoffs, *, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int]:
    """How many rows of each kind were deleted. `stopping` is asked between batches:
    a shutdown ends a pass within one batch."""
    counts: dict[str, int] = {}
    for kind, (key, condition) in _KINDS.items():
        total, after = 0, None
        while not stopping():
            deleted, after = _batch(db, key, condition(cutoffs), after)
            total += deleted
            if after is None:
                break
        counts[kind] = total
    return counts
