"""How long rows are kept once they have served their purpose (docs/privacy.md):
what `userservice prune` deletes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from userservice.db.ports import Storage
from userservice.db.prune import Cutoffs, prune
from userservice.settings import Settings

# A settled mail's row (its content is already erased) is kept this long so the
# operator can see what was sent or refused.
SETTLED_MAIL_KEPT = dt.timedelta(days=1)


def cutoffs(settings: Settings, now: dt.datetime) -> Cutoffs:
    return Cutoffs(
        now=now,
        audit_before=now - dt.timedelta(days=settings.audit_retention_days),
        settled_mail_before=now - SETTLED_MAIL_KEPT,
    )


def prune_expired(
    db: Storage, settings: Settings, *, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int] | None:
    """Delete what has expired or is past its retention: how many rows of each kind,
    or None when another process or replica is pruning (one pass at a time, N6)."""
    with db.prune_turn() as ours:
        if not ours:
            return None
        return prune(db, cutoffs(settings, dt.datetime.now(dt.UTC)), stopping=stopping)
