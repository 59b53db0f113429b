"""M8: stripping a user's factors and switching the administrators' policy need a
recent login (RFC 9470, max_age 300): an administrator's old token, kept alive by
refreshes, reads and changes nothing. M3, M8: while the policy is `admins` an
administrator cannot remove their own app (409); another administrator resets it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer, login, register
from tests.support.factor_api import enrol, fresh_token
from tests.support.factors import verified
from tests.support.problems import assert_problem
from userservice.wiring import wired

POLICY = "/admin/policies/mfa"


def _root(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


def _ada_with_app(client: TestClient, app: FastAPI) -> str:
    """Ada, proven, with an app set up through the API: her id."""
    created = register(client, "ada@example.com")
    verified(app, "ada@example.com")
    enrol(client, bearer(login(client, "ada@example.com")["access_token"]))
    return str(created["id"])


def _assert_step_up(response: Any) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge
    assert assert_problem(response)["code"] == "insufficient_user_authentication"


def test_m8_an_old_admin_token_cannot_reset_factors_or_switch_the_policy(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    ada_id = _ada_with_app(client, app)
    old = fresh_token(app, _root(admin), age=301)
    # Reading stays open to an old token.
    assert client.get(f"/users/{ada_id}/factors", headers=old).json()["totp"]["enabled"] is True
    assert client.get(POLICY, headers=old).json() == {"required_for": "none"}
    _assert_step_up(client.delete(f"/users/{ada_id}/factors", headers=old))
    _assert_step_up(client.put(POLICY, json={"required_for": "admins"}, headers=old))
    assert wired(app).factors.summary(uuid.UUID(ada_id)).enrolled
    assert wired(app).mfa_policy.required_for() == "none"
    # A fresh login does both.
    fresh = fresh_token(app, _root(admin))
    assert client.delete(f"/users/{ada_id}/factors", headers=fresh).status_code == 204
    assert not wired(app).factors.summary(uuid.UUID(ada_id)).enrolled
    switched = client.put(POLICY, json={"required_for": "none"}, headers=fresh)
    assert switched.status_code == 200, switched.text


def test_m8_m3_an_admin_under_the_policy_cannot_remove_their_own_app(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    verified(app, admin["email"])
    root = _root(admin)
    enrol(client, root)
    root = fresh_token(app, root)  # the enrolment ended the old one (M3)
    assert client.put(POLICY, json={"required_for": "admins"}, headers=root).status_code == 200
    refused = client.delete("/users/me/factors/totp", headers=root)
    assert refused.status_code == 409, refused.text
    assert "Administrators must keep" in assert_problem(refused)["detail"]
    assert client.get("/users/me/factors", headers=root).json()["totp"]["enabled"] is True
    # With the policy off again, the app may go.
    assert client.put(POLICY, json={"required_for": "none"}, headers=root).status_code == 200
    assert client.delete("/users/me/factors/totp", headers=root).status_code == 204
