"""An address is reserved while an unused, unexpired undo link names it
(db/account_tokens.py `reserved`, as services/email_change.py asks it): the old
address of an email change stays its former owner's until the undo link is used
or expires (L21), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from tests.support.storage import add_user
from userservice.db.account_tokens import AccountTokenRepository, reserved
from userservice.db.backend import Database
from userservice.db.models import AccountToken
from userservice.services.account_tokens import Purpose

NOW = dt.datetime.now(dt.UTC)
OLD = "ada@example.com"
UNDO = Purpose.UNDO_EMAIL_CHANGE


def add_link(db: Database, purpose: str, expires_at: dt.datetime, digest: str) -> None:
    user = add_user(db, f"{digest[:8]}@example.org")
    with db.unit_of_work() as session:
        AccountTokenRepository(session).add(digest, purpose, user, OLD, NOW, expires_at)


def is_reserved(db: Database, address: str = OLD) -> bool:
    with db.unit_of_work(read_only=True) as session:
        return reserved(session, address, UNDO, NOW)


def test_an_unused_unexpired_undo_link_reserves_its_address(database: Database) -> None:
    assert not is_reserved(database)
    add_link(database, UNDO, NOW + dt.timedelta(days=7), "u" * 64)
    assert is_reserved(database)
    assert not is_reserved(database, "bob@example.com")


def test_a_used_or_expired_undo_link_reserves_nothing(database: Database) -> None:
    add_link(database, UNDO, NOW - dt.timedelta(seconds=1), "e" * 64)
    assert not is_reserved(database)
    add_link(database, UNDO, NOW + dt.timedelta(days=7), "u" * 64)
    with database.unit_of_work() as session:
        session.execute(
            update(AccountToken).where(AccountToken.digest == "u" * 64).values(used_at=NOW)
        )
    assert not is_reserved(database)


def test_links_of_other_purposes_reserve_nothing(database: Database) -> None:
    later = NOW + dt.timedelta(days=7)
    for purpose in ("verify_email", "reset_password", "change_email"):
        add_link(database, purpose, later, purpose[:1] * 64)
    assert not is_reserved(database)
