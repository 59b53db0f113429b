"""M8: the administrators' policy bites at once. Switching it to `admins` ends every
browser session, refresh token and access token of each active administrator
without an authenticator app, in the switch's unit of work; an administrator with
an app and a user who is no administrator keep theirs. Granting the admin role
under the policy does the same to a new administrator without an app. Over the
real application on SQLite and PostgreSQL; app codes by pyotp."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import PASSWORD, bearer, login, make_admin, register
from tests.support.oauth_clients import assert_oauth_error
from tests.support.oauth_mfa import with_app
from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.db.models import AuditEvent, User
from userservice.services.access_tokens import Grant
from userservice.services.assurance import ONE_TIME_CODE, with_second_factor
from userservice.services.user_admin import AdminChanges
from userservice.wiring import Services

IP = "192.0.2.8"
SCOPE = "openid profile email"


def _signed_in(client: TestClient, services: Services, user_id: uuid.UUID) -> dict[str, Any]:
    """A browser session and a token pair, as a sign-in with the app's code leaves
    them (the password grant refuses an account with an app, M4)."""
    amr = with_second_factor(ONE_TIME_CODE)
    raw = services.sessions.start(user_id, int(time.time()), amr=amr)

    async def issue() -> Any:
        registered = await services.clients.registration(FIRST_PARTY_CLIENT_ID)
        assert registered is not None
        user = services.accounts.get(user_id)
        return await services.tokens.issue(
            user, registered, SCOPE, Grant(int(time.time()), amr=amr)
        )

    assert client.portal is not None
    issued = client.portal.call(issue)
    return {
        "session": raw,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
    }


def _password_login(client: TestClient, services: Services, email: str) -> dict[str, Any]:
    tokens = login(client, email)
    user_id = uuid.UUID(
        client.get("/users/me", headers=bearer(tokens["access_token"])).json()["id"]
    )
    return {"session": services.sessions.start(user_id, int(time.time())), **tokens}


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


def _signed_out_events(services: Services) -> list[tuple[uuid.UUID, uuid.UUID, dict[str, Any]]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.user_id, AuditEvent.actor_id, AuditEvent.details)
            .where(AuditEvent.event == "policy.mfa_signed_out")
            .order_by(AuditEvent.id)
        ).all()
    return [(row[0], row[1], json.loads(row[2])) for row in rows]


def _id(services: Services, email: str) -> uuid.UUID:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        found = uow.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return found


def _admin(client: TestClient, services: Services, email: str) -> uuid.UUID:
    assert isinstance(client.app, FastAPI)
    make_admin(client.app, email)
    return _id(services, email)


def test_m8_policy_admins_ends_an_unenrolled_admins_sessions_and_tokens_at_once(
    client: TestClient, services: Services
) -> None:
    root = _admin(client, services, "root@example.com")
    lax = _admin(client, services, "lax@example.com")
    eve, _secret = with_app(client, "eve@example.com")
    services.user_admin.update(root, eve, AdminChanges(is_admin=True), ip=IP)
    register(client, "ada@example.com")
    held = {
        "lax": _password_login(client, services, "lax@example.com"),
        "ada": _password_login(client, services, "ada@example.com"),
        "eve": _signed_in(client, services, eve),
    }
    services.mfa_policy.set_required_for("admins", actor_id=root, ip=IP)
    # The administrators without an app (the actor among them) are out at once; a
    # refresh of their old token no longer buys a `pwd` token to switch back with.
    assert _alive(client, services, held["lax"]) == (False, False, False)
    assert _alive(client, services, held["ada"]) == (True, True, True)
    assert _alive(client, services, held["eve"]) == (True, True, True)
    events = _signed_out_events(services)
    assert sorted((user, actor) for user, actor, _ in events) == sorted([(root, root), (lax, root)])
    assert {user: details["sessions"] for user, _, details in events}[lax] == 1
    # Setting it again signs out whoever has no app still, nobody else.
    services.mfa_policy.set_required_for("none", actor_id=root, ip=IP)
    again = _password_login(client, services, "ada@example.com")
    services.mfa_policy.set_required_for("admins", actor_id=None, ip=None, via="cli")
    assert _alive(client, services, again) == (True, True, True)


def test_m8_a_disabled_admin_is_left_out(client: TestClient, services: Services) -> None:
    root = _admin(client, services, "root@example.com")
    gone = _admin(client, services, "gone@example.com")
    services.user_admin.update(root, gone, AdminChanges(is_active=False), ip=IP)
    services.mfa_policy.set_required_for("admins", actor_id=root, ip=IP)
    assert [user for user, _, _ in _signed_out_events(services)] == [root]


def test_m8_granting_admin_under_the_policy_ends_the_new_admins_sessions(
    client: TestClient, services: Services
) -> None:
    root = _admin(client, services, "root@example.com")
    register(client, "ada@example.com")
    register(client, "bob@example.com")
    ada, bob = _id(services, "ada@example.com"), _id(services, "bob@example.com")
    eve, _secret = with_app(client, "eve@example.com")
    # Under `none` a grant ends nothing.
    bob_held = _password_login(client, services, "bob@example.com")
    services.user_admin.update(root, bob, AdminChanges(is_admin=True), ip=IP)
    assert _alive(client, services, bob_held) == (True, True, True)
    services.mfa_policy.set_required_for("admins", actor_id=root, ip=IP)
    ada_held = _password_login(client, services, "ada@example.com")
    eve_held = _signed_in(client, services, eve)
    # A change that is no grant (a name) leaves the user alone.
    services.user_admin.update(root, ada, AdminChanges(display_name="Ada"), ip=IP)
    assert _alive(client, services, ada_held) == (True, True, True)
    ada_held = _password_login(client, services, "ada@example.com")
    services.user_admin.update(root, ada, AdminChanges(is_admin=True), ip=IP)
    services.user_admin.update(root, eve, AdminChanges(is_admin=True), ip=IP)
    assert _alive(client, services, ada_held) == (False, False, False)
    assert _alive(client, services, eve_held) == (True, True, True)
    assert (ada, root) in [(user, actor) for user, actor, _ in _signed_out_events(services)]
    assert eve not in [user for user, _, _ in _signed_out_events(services)]
    # Their next password sign-in is the forced enrolment (M4: mfa_required).
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    assert_oauth_error(client.post("/oauth/token", data=form), 400, "mfa_required")
