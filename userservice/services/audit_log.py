"""Reading the stored audit trail (services/audit.py writes it)."""

from __future__ import annotations

from userservice.db.ports import Storage


class AuditLog:
    def __init__(self, db: Storage) -> None:
        self.db = db
