"""A user's data: all of it handed over on request (GDPR art. 15, 20), and erased
everywhere with the account (art. 17)."""

from __future__ import annotations

import uuid
from typing import Any

from userservice.db.ports import Storage


class Privacy:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def export(self, user_id: uuid.UUID) -> dict[str, Any]:
        raise NotImplementedError

    def erase(self, user_id: uuid.UUID, *, actor_id: uuid.UUID | None, ip: str | None) -> None:
        raise NotImplementedError
