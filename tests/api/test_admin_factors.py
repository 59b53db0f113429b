"""An administrator sees and resets a user's second factors (M8): audited with the
administrator, mailed, every session and token of the user ended; nobody else may."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.callers import basic_headers, first_party_headers
from tests.support.factor_api import enrol, events, fresh_token, mails
from tests.support.factors import verified
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem


def _ada_enrolled(client: TestClient, app: FastAPI) -> tuple[str, dict[str, str]]:
    ada_id = str(register(client, EMAIL)["id"])
    verified(app, EMAIL)
    headers = first_party_headers(client)
    enrol(client, headers)
    return ada_id, fresh_token(app, headers)


def test_m8_an_admin_lists_and_resets_a_users_factors(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    root = {"Authorization": f"Bearer {admin['tokens']['access_token']}"}
    ada_id, ada = _ada_enrolled(client, app)
    listed = client.get(f"/users/{ada_id}/factors", headers=root)
    assert listed.status_code == 200, listed.text
    assert listed.json()["totp"]["enabled"] is True
    assert listed.json()["recovery_codes_left"] == 10
    time.sleep(1.1)  # JWT iat counts whole seconds (see test_factors_api)
    reset = client.delete(f"/users/{ada_id}/factors", headers=root)
    assert reset.status_code == 204, reset.text
    # Every token of Ada's ended; her password alone signs her in again.
    assert client.get("/users/me", headers=ada).status_code == 401
    assert client.get("/users/me", headers=basic_headers()).status_code == 200
    assert client.get(f"/users/{ada_id}/factors", headers=root).json() == {
        "totp": {"enabled": False, "confirmed_at": None},
        "recovery_codes_left": 0,
        "passkeys": 0,
    }
    assert mails(app, EMAIL)[-1] == "factors_reset"
    [event] = events(app, "factors.reset")
    root_id = client.get("/users/me", headers=root).json()["id"]
    assert str(event.user_id) == ada_id and str(event.actor_id) == root_id


def test_m8_nobody_else_sees_or_resets_factors(
    client: TestClient, app: FastAPI, admin: dict[str, Any]
) -> None:
    register(client, "bob@example.com")
    ada_id, ada = _ada_enrolled(client, app)
    bob = basic_headers("bob@example.com")
    for headers, status in (({}, 401), (bob, 403), (ada, 403)):
        for method in ("GET", "DELETE"):
            refused = client.request(method, f"/users/{ada_id}/factors", headers=headers)
            assert refused.status_code == status, (method, refused.text)
            assert_problem(refused)
    assert client.get("/users/me/factors", headers=ada).json()["totp"]["enabled"] is True
    assert not events(app, "factors.reset")


def test_m8_unknown_users_and_the_callers_own_path(
    client: TestClient, admin: dict[str, Any]
) -> None:
    root = {"Authorization": f"Bearer {admin['tokens']['access_token']}"}
    for method in ("GET", "DELETE"):
        missing = client.request(method, f"/users/{uuid.uuid4()}/factors", headers=root)
        assert missing.status_code == 404, missing.text
        assert client.request(method, "/users/not-a-uuid/factors", headers=root).status_code == 422
    # /users/me/factors is the caller's own, never an id that is no UUID.
    own = client.get("/users/me/factors", headers=root)
    assert own.status_code == 200, own.text
    wrong_method = client.delete("/users/me/factors", headers=root)
    assert wrong_method.status_code == 405, wrong_method.text
    assert "GET" in wrong_method.headers["allow"]
