"""Reading the stored audit trail (services/audit.py writes it)."""

from __future__ import annotations

import uuid

from userservice.db.audit import events_about
from userservice.db.ports import Storage
from userservice.records import StoredAuditEvent


class AuditLog:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def page(self, user_id: uuid.UUID, *, after: int | None, limit: int) -> list[StoredAuditEvent]:
        """The events about one account (a deleted account's pseudonym too), newest
        first: at most `limit` of those older than the event `after` (L25)."""
        with self.db.unit_of_work(read_only=True) as uow:
            return events_about(uow, user_id, after=after, limit=limit)
