"""How far the mail senders are behind: the outbox's waiting mails and the oldest
one's age, for the metrics a scrape reads (one aggregate over the outbox)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, func, select

from userservice.db.backend import Database
from userservice.db.codec import utc
from userservice.db.models import OutboxMail

_MAIL = cast(Table, OutboxMail.__table__)
_C = _MAIL.c
# Waiting: neither sent nor refused for good (claimed ones included: not sent yet).
_BACKLOG = select(func.count(), func.min(_C.created_at)).where(
    _C.sent_at.is_(None), _C.failed_at.is_(None)
)


def outbox_backlog(db: Database) -> tuple[int, dt.datetime | None]:
    """(mails waiting, when the oldest of them was queued, or None)."""
    with db.unit_of_work(read_only=True) as session:
        waiting, oldest = session.execute(_BACKLOG).one()
    return int(waiting), utc(oldest) if oldest is not None else None
