"""A password login's stored audit event against a database that cannot store it:
the throttle still counts every failure (S12), a failure is still refused as one
and logged, and a correct password signs nobody in unaudited (L25), on SQLite and
PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.support.accounts import PASSWORD
from tests.support.event_loop import run
from userservice.app import build_account_service
from userservice.db.audit import AuditWrites
from userservice.db.backend import Database
from userservice.db.models import AuditEvent
from userservice.errors import AuthenticationFailed, Throttled
from userservice.records import AuditEntry, UserRecord
from userservice.services.accounts import AccountService
from userservice.settings import Settings

EMAIL = "ada@example.com"


class _AuditDown(AuditWrites):
    """The audit port of a database too busy to take the write (SQLite's busy
    timeout, a PostgreSQL statement timeout): no real part fails on demand."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.attempts = 0

    async def add(self, entry: AuditEntry) -> None:
        self.attempts += 1
        raise OperationalError("INSERT INTO audit_events", {}, Exception("database is locked"))


@pytest.fixture
def accounts(database: Database, make_settings: Callable[..., Settings]) -> AccountService:
    service = build_account_service(make_settings(login_limit_per_account="2/minute"), database)
    service.register(EMAIL, PASSWORD, "Ada")
    return service


def _login(accounts: AccountService, database: Database, password: str) -> UserRecord:
    return run(database, lambda: accounts.authenticate(EMAIL, password, "192.0.2.1"))


def test_a_failed_audit_write_still_counts_the_failed_login_s12(
    accounts: AccountService, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.audit")
    down = _AuditDown(database)
    database.audit = down
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            _login(accounts, database, "not the password 1")
    assert down.attempts == 2
    # The two failures were counted: the limit holds even for the right password.
    with pytest.raises(Throttled):
        _login(accounts, database, PASSWORD)
    # Not stored, but still in the log (L25).
    assert caplog.text.count("login.failed") == 2
    assert "reason=wrong_password" in caplog.text


def test_a_failed_audit_write_signs_nobody_in_l25(
    accounts: AccountService, database: Database
) -> None:
    database.audit = _AuditDown(database)
    with pytest.raises(OperationalError):
        _login(accounts, database, PASSWORD)


def test_a_login_is_stored_when_the_database_takes_it(
    accounts: AccountService, database: Database
) -> None:
    user = _login(accounts, database, PASSWORD)
    with pytest.raises(AuthenticationFailed):
        _login(accounts, database, "not the password 1")
    with database.unit_of_work(read_only=True) as uow:
        events = list(uow.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.event, e.user_id) for e in events][-2:] == [
        ("login.succeeded", user.id),
        ("login.failed", user.id),
    ]
