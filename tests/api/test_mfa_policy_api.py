"""/admin/policies/mfa: whether administrators must sign in with a second factor
(M8), read and set by administrators only, audited; once it is `admins`, an
administrator without a factor gets `mfa_required` from HTTP Basic."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.callers import basic_headers
from tests.support.factor_api import events
from tests.support.problems import assert_problem
from userservice.wiring import wired

PATH = "/admin/policies/mfa"


def _root(admin: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin['tokens']['access_token']}"}


def test_m8_the_policy_is_read_and_set_by_an_admin_and_audited(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    root = _root(admin)
    assert client.get(PATH, headers=root).json() == {"required_for": "none"}
    root_id = client.get("/users/me", headers=root).json()["id"]
    back = client.put(PATH, json={"required_for": "none"}, headers=root)
    assert back.json() == {"required_for": "none"}
    changed = client.put(PATH, json={"required_for": "admins"}, headers=root)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"required_for": "admins"}
    assert wired(app).mfa_policy.required_for() == "admins"
    [_, event] = events(app, "policy.mfa_changed")
    assert str(event.actor_id) == root_id
    # The actor has no app: their own token ended with the switch (M8).
    assert client.get(PATH, headers=root).status_code == 401


def test_m8_values_and_callers_are_checked(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    root = _root(admin)
    for body in ({"required_for": "everyone"}, {}, {"required_for": None}, {"x": "none"}):
        refused = client.put(PATH, json=body, headers=root)
        assert refused.status_code == 422, (body, refused.text)
    ada = {"Authorization": f"Bearer {user['tokens']['access_token']}"}
    for headers, status in (({}, 401), (ada, 403), (basic_headers(), 403)):
        assert client.get(PATH, headers=headers).status_code == status
        refused = client.put(PATH, json={"required_for": "admins"}, headers=headers)
        assert refused.status_code == status
        assert_problem(refused)
    assert client.get(PATH, headers=root).json() == {"required_for": "none"}


def test_m8_an_admin_without_a_factor_gets_mfa_required_from_basic(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    root_basic = basic_headers(admin["email"])
    assert client.get("/users/me", headers=root_basic).status_code == 200
    client.put(PATH, json={"required_for": "admins"}, headers=_root(admin))
    refused = client.get("/users/me", headers=root_basic)
    assert refused.status_code == 401, refused.text
    assert assert_problem(refused)["code"] == "mfa_required"
    assert 'acr_values="urn:userservice:acr:mfa"' in refused.headers["www-authenticate"]
    # Users who are no administrators keep signing in with their password.
    assert client.get("/users/me", headers=basic_headers()).status_code == 200
