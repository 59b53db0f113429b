"""M13: the rule `all` requires a second factor of every user. The switch signs out
at once every active user without one (an app or a passkey), leaves users with
either untouched; the password grant answers `mfa_required` to a plain user; the
next sign-in is the forced enrolment; the last factor cannot be removed, the app
can while a passkey remains (M8's rule generalised). Over the real application on
SQLite and PostgreSQL; a passkey is a row inserted through the ORM (its ceremony
is tested with the passkey service), app codes by pyotp."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.accounts import PASSWORD, bearer, login, make_admin, register
from tests.support.factors import now_code
from tests.support.journeys import mails, text_of
from tests.support.oauth_clients import assert_oauth_error, password_form
from tests.support.oauth_mfa import with_app
from tests.support.stored_passkeys import add_passkey
from userservice.db.models import AuditEvent, RecoveryCode, TotpFactor, User
from userservice.errors import Conflict, EmailNotVerified, InvalidCode, SecondFactorRequired
from userservice.services.factor_support import ADMIN_KEEPS_APP, EVERYONE_KEEPS_A_FACTOR
from userservice.wiring import Services

IP = "192.0.2.13"


def _id(services: Services, email: str) -> uuid.UUID:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        found = uow.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return found


def _password_session(client: TestClient, services: Services, email: str) -> dict[str, Any]:
    """A browser session and a token pair from before the switch (password only)."""
    tokens = login(client, email)
    return {"session": services.sessions.start(_id(services, email), int(time.time())), **tokens}


def _alive(client: TestClient, services: Services, held: dict[str, Any]) -> tuple[bool, ...]:
    """(session, access token, refresh token) still good."""
    assert client.portal is not None
    session = client.portal.call(services.sessions.current, held["session"])
    access = client.get("/users/me", headers=bearer(held["access_token"]))
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": held["refresh_token"]},
    )
    assert refreshed.status_code in (200, 400), refreshed.text
    return session is not None, access.status_code == 200, refreshed.status_code == 200


def _step(client: TestClient, services: Services, email: str) -> str | None:
    """What a correct password leads to: None (signed in), `verify` or `enrol`."""
    assert client.portal is not None
    try:
        client.portal.call(services.accounts.authenticate, email, PASSWORD, IP)
    except SecondFactorRequired as needed:
        return needed.step
    return None


def _signed_out(services: Services) -> dict[uuid.UUID, dict[str, Any]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.user_id, AuditEvent.details).where(
                AuditEvent.event == "policy.mfa_signed_out"
            )
        ).all()
    return {row[0]: json.loads(row[1]) for row in rows}


def test_m13_all_signs_out_every_user_without_a_factor_and_keeps_the_others(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    make_admin(app, "root@example.com")
    root = _id(services, "root@example.com")
    register(client, "ada@example.com")
    register(client, "bob@example.com")
    ada, bob = _id(services, "ada@example.com"), _id(services, "bob@example.com")
    held_ada = _password_session(client, services, "ada@example.com")
    held_bob = _password_session(client, services, "bob@example.com")
    # Bob's passkey comes after his password login: his tokens say pwd, and the
    # rule asks for a factor to exist, not for every old token to have used it.
    add_passkey(services, bob)
    eve, _secret = with_app(client, "eve@example.com")
    eve_session = services.sessions.start(eve, int(time.time()))
    services.mfa_policy.set_required_for("all", actor_id=root, ip=IP)
    assert services.mfa_policy.required_for() == "all"
    assert _alive(client, services, held_ada) == (False, False, False)
    assert _alive(client, services, held_bob) == (True, True, True)
    assert client.portal is not None
    assert client.portal.call(services.sessions.current, eve_session) is not None
    events = _signed_out(services)
    # Every user without a factor, the administrator who switched included.
    assert set(events) == {root, ada}
    assert events[ada]["rule"] == "all" and events[ada]["sessions"] == 1


def test_m13_a_plain_user_gets_mfa_required_from_the_password_grant_and_must_enrol(
    client: TestClient, services: Services
) -> None:
    register(client, "ada@example.com")
    register(client, "bob@example.com")
    add_passkey(services, _id(services, "bob@example.com"))
    assert _step(client, services, "ada@example.com") is None
    services.mfa_policy.set_required_for("all", actor_id=None, ip=None, via="cli")
    refused = client.post("/oauth/token", data=password_form("ada@example.com", PASSWORD))
    assert_oauth_error(refused, 400, "mfa_required")
    assert "access_token" not in refused.text
    # The next sign-in is the enrolment for the one without a factor, the second
    # step for the one with a passkey.
    assert _step(client, services, "ada@example.com") == "enrol"
    assert _step(client, services, "bob@example.com") == "verify"
    # Back to `admins`: a plain user signs in with the password alone again.
    services.mfa_policy.set_required_for("admins", actor_id=None, ip=None, via="cli")
    assert _step(client, services, "ada@example.com") is None


def _verified(services: Services, email: str) -> uuid.UUID:
    user_id = _id(services, email)
    with services.accounts.db.unit_of_work() as uow:
        uow.get_one(User, user_id).email_verified = True
    return user_id


def _rows(services: Services, model: Any, user_id: uuid.UUID) -> int:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        count = uow.scalar(select(func.count()).select_from(model).where(model.user_id == user_id))
    return int(count or 0)


@pytest.mark.parametrize("admin", [False, True])
def test_m13_the_last_factor_cannot_be_removed_under_all(
    client: TestClient, services: Services, admin: bool
) -> None:
    user_id, _secret = with_app(client, "ada@example.com")
    if admin:
        with services.accounts.db.unit_of_work() as uow:
            uow.get_one(User, user_id).is_admin = True
    services.mfa_policy.set_required_for("all", actor_id=None, ip=None, via="cli")
    with pytest.raises(Conflict) as refused:
        services.factors.remove_totp(user_id, ip=IP, locale="en")
    assert refused.value.detail == EVERYONE_KEEPS_A_FACTOR
    # Rolled back whole: the app and its ten codes are there.
    assert services.factors.summary(user_id).totp
    assert _rows(services, RecoveryCode, user_id) == 10
    # Under `admins` a plain user may remove it; an administrator may not.
    services.mfa_policy.set_required_for("admins", actor_id=None, ip=None, via="cli")
    if admin:
        with pytest.raises(Conflict) as kept:
            services.factors.remove_totp(user_id, ip=IP, locale="en")
        assert kept.value.detail == ADMIN_KEEPS_APP
    else:
        services.factors.remove_totp(user_id, ip=IP, locale="en")
        assert not services.factors.summary(user_id).enrolled
        assert _rows(services, RecoveryCode, user_id) == 0


def test_m13_the_app_goes_while_a_passkey_remains_and_the_codes_stay(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    user_id, secret = with_app(client, "ada@example.com")
    add_passkey(services, user_id, synced=True)
    services.mfa_policy.set_required_for("all", actor_id=None, ip=None, via="cli")
    services.factors.remove_totp(user_id, ip=IP, locale="en")
    summary = services.factors.summary(user_id)
    assert not summary.totp and summary.passkeys == 1 and summary.enrolled
    # M2: the codes stand in for the passkey now; the app's codes are refused.
    assert summary.recovery_codes_left == 10
    assert _rows(services, TotpFactor, user_id) == 0
    with pytest.raises(InvalidCode):
        services.factors.verify(user_id, now_code(secret, 1), ip=IP, locale="en")
    # Still signs in with a factor, so the switch's next sign-in is the second step.
    assert _step(client, services, "ada@example.com") == "verify"
    # M3: the notice says what still guards the account, in its language.
    [notice] = mails(app, "ada@example.com", kind="factor_removed")
    body = " ".join(text_of(notice).split())
    assert "Your passkeys and recovery codes still sign you in" in body
    assert "needs only your password" not in body


def test_m13_an_unverified_user_under_all_must_enrol_but_cannot_start(
    client: TestClient, services: Services
) -> None:
    register(client, "ada@example.com")
    user_id = _id(services, "ada@example.com")
    services.mfa_policy.set_required_for("all", actor_id=None, ip=None, via="cli")
    assert _step(client, services, "ada@example.com") == "enrol"
    with pytest.raises(EmailNotVerified):
        services.factors.start_totp(user_id, ip=IP)
    _verified(services, "ada@example.com")
    assert services.factors.start_totp(user_id, ip=IP).secret


def _race(*removals: Callable[[], None]) -> list[str]:
    """Run the removals at the same moment; each one's outcome."""
    start = threading.Barrier(len(removals))
    outcomes: list[str] = []

    def attempt(remove: Callable[[], None]) -> None:
        start.wait()
        try:
            remove()
            outcomes.append("removed")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(remove,)) for remove in removals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


def test_m13_removing_the_app_and_the_passkey_at_once_leaves_one(
    client: TestClient, services: Services
) -> None:
    """Each removal locks the account's row, then reads what is left after its own
    delete: of two concurrent removals of the last two factors, one is refused."""
    services.mfa_policy.set_required_for("all", actor_id=None, ip=None, via="cli")
    for round_ in range(4):
        user_id, _secret = with_app(client, f"ada{round_}@example.com")
        passkey_id = add_passkey(services, user_id)
        outcomes = _race(
            partial(services.factors.remove_totp, user_id, ip=IP, locale="en"),
            partial(services.passkeys.remove, user_id, passkey_id, ip=IP, locale="en"),
        )
        assert outcomes == ["refused", "removed"]
        assert services.factors.summary(user_id).enrolled
