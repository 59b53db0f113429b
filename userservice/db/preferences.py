"""A user's preferences kept on the users row: the language they last chose."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from userservice.db.models import User


class PreferenceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def set_locale(self, user_id: uuid.UUID, locale: str) -> bool:
        """False when the user no longer exists. updated_at is left alone: a
        language is no change to the account itself."""
        result = self.session.execute(
            update(User)
            .where(User.id == user_id)
            # Set to itself: the column's onupdate would otherwise stamp it.
            .values(locale=locale, updated_at=User.updated_at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
