"""Signing in with a password when second factors exist (services/sign_in.py): a
correct password of an account with an app is not a login but
SecondFactorRequired("verify") (M4); an administrator the policy requires to
have one, without one, gets "enrol" (M8); a wrong password gets exactly the
answer it always got, and costs no read of the factors (E3, M4)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.accounts import PASSWORD
from tests.support.event_loop import run
from tests.support.storage import set_user
from userservice.app import build_account_service
from userservice.db.backend import Database
from userservice.db.factors import FactorRepository
from userservice.db.models import AuditEvent
from userservice.errors import AuthenticationFailed, SecondFactorRequired
from userservice.observability.metrics import LoginOutcome, NoMetrics
from userservice.records import UserRecord
from userservice.services.accounts import AccountService
from userservice.services.mfa_policy import MfaPolicy
from userservice.settings import Settings

ADA = "ada@example.com"
ROOT = "root@example.com"
IP = "192.0.2.1"


class Outcomes(NoMetrics):
    """The login outcomes the service reported (the metrics' interface)."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[LoginOutcome] = []

    def login(self, outcome: LoginOutcome) -> None:
        self.logins.append(outcome)


@pytest.fixture
def metrics() -> Outcomes:
    return Outcomes()


@pytest.fixture
def accounts(
    database: Database, make_settings: Callable[..., Settings], metrics: Outcomes
) -> AccountService:
    return build_account_service(make_settings(), database, metrics=metrics)


def with_app(database: Database, user_id: uuid.UUID, *, confirmed: bool = True) -> None:
    now = dt.datetime.now(dt.UTC)
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        factors.start_totp(user_id, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", now)
        if confirmed:
            factors.confirm_totp(user_id, 1, now, now - dt.timedelta(minutes=1))


def sign_in(accounts: AccountService, database: Database, email: str, password: str) -> UserRecord:
    return run(database, lambda: accounts.authenticate(email, password, IP))


def stored_events(database: Database) -> list[tuple[str, dict[str, Any]]]:
    with database.unit_of_work(read_only=True) as uow:
        rows = uow.execute(select(AuditEvent.event, AuditEvent.details).order_by(AuditEvent.id))
        return [(row[0], json.loads(row[1] or "{}")) for row in rows]


class CountedLookups:
    """The users port's factor read, counted (it still runs): which sign-ins read
    more."""

    def __init__(self, database: Database) -> None:
        self.calls = 0
        self._inner = database.users.second_factor_state

    async def __call__(self, user_id: Any) -> Any:
        self.calls += 1
        return await self._inner(user_id)


def test_m4_correct_password_of_an_account_with_an_app_needs_the_code(
    accounts: AccountService, database: Database, metrics: Outcomes
) -> None:
    ada = accounts.register(ADA, PASSWORD, "Ada")
    with_app(database, ada.id)
    with pytest.raises(SecondFactorRequired) as required:
        sign_in(accounts, database, ADA, PASSWORD)
    assert (required.value.user_id, required.value.step) == (ada.id, "verify")
    assert required.value.code == "mfa_required"
    events = [event for event, _ in stored_events(database)]
    assert ("login.password_accepted", {"step": "verify"}) in stored_events(database)
    assert "login.succeeded" not in events
    assert metrics.logins == ["second_factor"]


def test_m4_a_pending_app_does_not_count(accounts: AccountService, database: Database) -> None:
    ada = accounts.register(ADA, PASSWORD, "Ada")
    with_app(database, ada.id, confirmed=False)
    assert sign_in(accounts, database, ADA, PASSWORD).id == ada.id


def test_m4_wrong_password_is_answered_as_always_without_reading_factors(
    accounts: AccountService,
    database: Database,
    metrics: Outcomes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = accounts.register(ADA, PASSWORD, "Ada")
    plain = accounts.register("bob@example.com", PASSWORD, "Bob")
    with_app(database, ada.id)
    lookups = CountedLookups(database)
    monkeypatch.setattr(database.users, "second_factor_state", lookups)
    answers = []
    for email in (ADA, plain.email, "nobody@example.com"):
        with pytest.raises(AuthenticationFailed) as refused:
            sign_in(accounts, database, email, "not the password at all")
        answers.append((type(refused.value), str(refused.value), refused.value.code))
    # One answer, whether the account has a factor, none, or does not exist.
    assert len(set(answers)) == 1
    assert lookups.calls == 0
    assert metrics.logins == ["failure"] * 3
    logins = [event for event, _ in stored_events(database) if event.startswith("login.")]
    assert logins == ["login.failed"] * 3
    # The correct password costs exactly one read more.
    with pytest.raises(SecondFactorRequired):
        sign_in(accounts, database, ADA, PASSWORD)
    assert lookups.calls == 1


def test_m8_policy_admins_makes_an_admin_without_an_app_enrol(
    accounts: AccountService, database: Database
) -> None:
    root = accounts.register(ROOT, PASSWORD, "Root", admin=True)
    ada = accounts.register(ADA, PASSWORD, "Ada")
    assert sign_in(accounts, database, ROOT, PASSWORD).id == root.id
    MfaPolicy(database).set_required_for("admins", actor_id=root.id, ip=IP)
    with pytest.raises(SecondFactorRequired) as required:
        sign_in(accounts, database, ROOT, PASSWORD)
    assert required.value.step == "enrol"
    # Not an administrator: the policy does not apply.
    assert sign_in(accounts, database, ADA, PASSWORD).id == ada.id
    # An administrator with an app is asked for the code.
    with_app(database, root.id)
    with pytest.raises(SecondFactorRequired) as required:
        sign_in(accounts, database, ROOT, PASSWORD)
    assert required.value.step == "verify"


def test_m4_disabled_account_with_an_app_is_refused_like_a_wrong_password(
    accounts: AccountService, database: Database
) -> None:
    ada = accounts.register(ADA, PASSWORD, "Ada")
    with_app(database, ada.id)
    set_user(database, ada.id, is_active=False)
    with pytest.raises(AuthenticationFailed):
        sign_in(accounts, database, ADA, PASSWORD)
    assert "login.password_accepted" not in [e for e, _ in stored_events(database)]
