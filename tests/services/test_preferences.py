"""The language a user chose, kept on the account for its mails (F9): only an
offered language is stored, the account's updated_at is not touched, and a user
gone in the meantime is no error; on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import select

from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.models import User
from userservice.errors import InvalidInput
from userservice.services.preferences import PreferenceService


def row(db: Database, user_id: uuid.UUID) -> tuple[str | None, object]:
    with db.unit_of_work(read_only=True) as session:
        found = session.execute(
            select(User.locale, User.updated_at).where(User.id == user_id)
        ).one()
        return found[0], found[1]


def test_the_choice_is_stored_and_updated_at_kept(database: Database) -> None:
    user = add_user(database)
    before = row(database, user)
    assert before[0] is None
    PreferenceService(database).set_locale(user, "zh-Hans")
    after = row(database, user)
    assert after == ("zh-Hans", before[1])
    PreferenceService(database).set_locale(user, "en")
    assert row(database, user)[0] == "en"


@pytest.mark.parametrize("locale", ["fr", "zh", "zh-CN", "", "x" * 40])
def test_only_an_offered_language_is_stored(database: Database, locale: str) -> None:
    user = add_user(database)
    with pytest.raises(InvalidInput):
        PreferenceService(database).set_locale(user, locale)
    assert row(database, user)[0] is None


def test_a_missing_user_is_no_error_and_no_event(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        PreferenceService(database).set_locale(uuid.uuid4(), "zh-Hans")
        user = add_user(database)
        PreferenceService(database).set_locale(user, "zh-Hans")
    events = [r.getMessage() for r in caplog.records if "user.locale_changed" in r.getMessage()]
    assert events == [f"user.locale_changed user={user} locale=zh-Hans"]
