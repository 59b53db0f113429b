"""What a user chose for themselves on the pages: today, their language."""

from __future__ import annotations

import uuid

from userservice.db.ports import Storage
from userservice.db.preferences import PreferenceRepository
from userservice.errors import InvalidInput
from userservice.i18n import LOCALES
from userservice.services.audit import audit


class PreferenceService:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def set_locale(self, user_id: uuid.UUID, locale: str) -> None:
        """Remember the language for mails (the account's last choice). Only a
        member of LOCALES is ever stored (F9)."""
        if locale not in LOCALES:
            raise InvalidInput("This language is not offered.")
        with self.db.unit_of_work() as session:
            changed = PreferenceRepository(session).set_locale(user_id, locale)
        if changed:
            audit("user.locale_changed", user=user_id, locale=locale)
