"""Admin user management (GET/PATCH/DELETE /users…) and the guard on every admin
route, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.oauth_clients import refresh, user_basic
from tests.support.routes import admin_routes, walk_routes

FORBIDDEN_IN_BODIES = ("argon2", "password_hash", "$argon2id$")


@pytest.fixture(autouse=True)
def no_secrets_in_any_response(client: TestClient) -> Iterator[list[httpx.Response]]:
    """G2: no response body of any request in this file contains a hash, the word
    password_hash, or the SHA-256 digest of a refresh token we were handed."""
    seen: list[httpx.Response] = []

    def record(response: httpx.Response) -> None:
        response.read()
        seen.append(response)

    client.event_hooks["response"].append(record)
    yield seen
    client.event_hooks["response"].remove(record)
    digests: set[str] = set()
    for response in seen:
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("refresh_token"), str):
                digests.add(hashlib.sha256(body["refresh_token"].encode()).hexdigest())
    assert seen, "the hook saw no responses"
    for response in seen:
        text = response.text
        for needle in (*FORBIDDEN_IN_BODIES, *digests):
            assert needle not in text, f"{response.request.url} leaked {needle[:12]}…"


def concrete(path: str) -> str:
    return path.replace("{user_id}", str(uuid.uuid4())).replace("{client_id}", "some-client")


def admin_id(client: TestClient, admin: dict[str, Any]) -> str:
    me = client.get("/users/me", headers=bearer(admin["tokens"]["access_token"]))
    assert me.status_code == 200
    return str(me.json()["id"])


# --- G1: the route table ---------------------------------------------------------


def test_every_admin_route_refuses_anonymous_and_normal_users(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """G1: walk the route table; every route whose policy rule needs an administrator answers 401
    without a token and 403 with a normal user's token."""
    routes = admin_routes(app)
    expected = {
        ("GET", "/users"),
        ("PATCH", "/users/{user_id}"),
        ("DELETE", "/users/{user_id}"),
    }
    assert expected <= set(routes), routes
    assert len(routes) >= 3
    user_auth = bearer(user["tokens"]["access_token"])
    for method, path in routes:
        url = concrete(path)
        body: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
        anonymous = client.request(method, url, **body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        normal = client.request(method, url, headers=user_auth, **body)
        assert normal.status_code == 403, (method, path, normal.text)
        assert normal.headers["content-type"] == "application/problem+json"


def test_user_routes_that_are_not_admin_only_are_not_misclassified(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """G1: the walk distinguishes guarded from unguarded routes (not vacuous)."""
    routes = admin_routes(app)
    all_paths = {(m, r.path_format) for r in walk_routes(app.routes) for m in r.methods}
    for unguarded in (("POST", "/users"), ("GET", "/users/me"), ("GET", "/users/{user_id}")):
        assert unguarded in all_paths
        assert unguarded not in routes
    me = client.get("/users/me", headers=bearer(user["tokens"]["access_token"]))
    assert me.status_code == 200


# --- GET /users: search and pagination -----------------------------------------------


def test_search_by_email_substring_is_case_insensitive(
    client: TestClient, admin: dict[str, Any]
) -> None:
    register(client, "ada.lovelace@example.com", display_name="Ada")
    register(client, "charles@babbage.org", display_name="Charles")
    auth = bearer(admin["tokens"]["access_token"])
    for query in ("LOVELACE", "lovelace", "Ada.Love"):
        response = client.get("/users", params={"email": query}, headers=auth)
        assert response.status_code == 200
        emails = [u["email"] for u in response.json()["items"]]
        assert emails == ["ada.lovelace@example.com"]
    orgs = client.get("/users", params={"email": ".ORG"}, headers=auth).json()["items"]
    assert [u["email"] for u in orgs] == ["charles@babbage.org"]


def test_search_by_display_name_substring_is_case_insensitive(
    client: TestClient, admin: dict[str, Any]
) -> None:
    register(client, "a@example.com", display_name="Grace Hopper")
    register(client, "b@example.com", display_name="Alan Turing")
    register(client, "c@example.com")
    auth = bearer(admin["tokens"]["access_token"])
    for query in ("hopper", "HOPP", "race h"):
        response = client.get("/users", params={"name": query}, headers=auth)
        assert response.status_code == 200
        assert [u["email"] for u in response.json()["items"]] == ["a@example.com"]
    both = client.get("/users", params={"name": "a", "email": "b@"}, headers=auth)
    assert [u["email"] for u in both.json()["items"]] == ["b@example.com"]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_keyset_pagination_walks_every_user_once_in_email_order(
    client: TestClient, admin: dict[str, Any], limit: int
) -> None:
    emails = [f"{name}@example.com" for name in ("zed", "amy", "Kim", "bob", "yan")]
    for email in emails:
        register(client, email)
    expected = sorted([e.lower() for e in emails] + [admin["email"]])
    auth = bearer(admin["tokens"]["access_token"])
    walked: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/users", params=params, headers=auth)
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= limit
        walked.extend(u["email"] for u in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert walked == expected
    assert pages >= len(expected) // limit


@pytest.mark.parametrize("cursor", ["!!!", "a", "____", "%00", "x" * 700])
def test_garbage_cursor_is_422(client: TestClient, admin: dict[str, Any], cursor: str) -> None:
    response = client.get(
        "/users", params={"cursor": cursor}, headers=bearer(admin["tokens"]["access_token"])
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("limit", ["0", "-1", "201", "ten"])
def test_limit_out_of_range_is_422(client: TestClient, admin: dict[str, Any], limit: str) -> None:
    response = client.get(
        "/users", params={"limit": limit}, headers=bearer(admin["tokens"]["access_token"])
    )
    assert response.status_code == 422


# --- PATCH /users/{id}: disable, roles ------------------------------------------------


def test_disable_refuses_existing_tokens_refresh_and_basic_at_once(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    """C8: disabling a user revokes every token immediately."""
    auth = bearer(admin["tokens"]["access_token"])
    user_auth = bearer(user["tokens"]["access_token"])
    assert client.get("/users/me", headers=user_auth).status_code == 200
    response = client.patch(f"/users/{user['id']}", json={"is_active": False}, headers=auth)
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert client.get("/users/me", headers=user_auth).status_code == 401
    assert refresh(client, user["tokens"]["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.get("/users/me", headers=user_basic(user["email"], PASSWORD)).status_code == 401
    denied = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user["email"], "password": PASSWORD},
    )
    assert denied.status_code == 400

    enabled = client.patch(f"/users/{user['id']}", json={"is_active": True}, headers=auth)
    assert enabled.status_code == 200 and enabled.json()["is_active"] is True
    assert client.get("/users/me", headers=user_basic(user["email"], PASSWORD)).status_code == 200
    fresh = login(client, user["email"])
    assert client.get("/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_grant_and_revoke_admin_takes_effect_on_next_request(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    """G5: role removal takes effect on the next request, even with a valid token."""
    auth = bearer(admin["tokens"]["access_token"])
    granted = client.patch(f"/users/{user['id']}", json={"is_admin": True}, headers=auth)
    assert granted.status_code == 200 and granted.json()["is_admin"] is True
    promoted = bearer(login(client, user["email"])["access_token"])
    assert client.get("/users", headers=promoted).status_code == 200

    revoked = client.patch(f"/users/{user['id']}", json={"is_admin": False}, headers=auth)
    assert revoked.status_code == 200 and revoked.json()["is_admin"] is False
    assert client.get("/users", headers=promoted).status_code == 403
    assert client.delete(f"/users/{uuid.uuid4()}", headers=promoted).status_code == 403
    assert client.get("/users/me", headers=promoted).status_code == 200
    basic_demoted = client.get("/users", headers=user_basic(user["email"], PASSWORD))
    assert basic_demoted.status_code == 403


@pytest.mark.parametrize("change", [{"is_admin": False}, {"is_active": False}])
def test_admin_cannot_demote_or_disable_themselves(
    client: TestClient, admin: dict[str, Any], change: dict[str, bool]
) -> None:
    auth = bearer(admin["tokens"]["access_token"])
    own_id = admin_id(client, admin)
    response = client.patch(f"/users/{own_id}", json=change, headers=auth)
    assert response.status_code == 422
    me = client.get("/users/me", headers=auth)
    assert me.status_code == 200
    assert me.json()["is_admin"] is True and me.json()["is_active"] is True


def test_patch_unknown_user_is_404_and_unknown_field_is_422(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    auth = bearer(admin["tokens"]["access_token"])
    missing = client.patch(f"/users/{uuid.uuid4()}", json={"is_active": False}, headers=auth)
    assert missing.status_code == 404
    sneaky = client.patch(f"/users/{user['id']}", json={"tokens_valid_after": 0}, headers=auth)
    assert sneaky.status_code == 422
    sneaky = client.patch(f"/users/{user['id']}", json={"email_verified": True}, headers=auth)
    assert sneaky.status_code == 422


# --- DELETE /users/{id} --------------------------------------------------------------


def test_admin_delete_removes_user_and_kills_their_tokens(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    """C8: deletion revokes every token of the user."""
    auth = bearer(admin["tokens"]["access_token"])
    assert client.delete(f"/users/{user['id']}", headers=auth).status_code == 204
    assert client.get(f"/users/{user['id']}", headers=auth).status_code == 404
    assert (
        client.get("/users/me", headers=bearer(user["tokens"]["access_token"])).status_code == 401
    )
    assert refresh(client, user["tokens"]["refresh_token"]).json()["error"] == "invalid_grant"
    again = client.delete(f"/users/{user['id']}", headers=auth)
    assert again.status_code == 404
    listing = client.get("/users", headers=auth).json()["items"]
    assert user["email"] not in [u["email"] for u in listing]


def test_listing_never_exposes_hashes(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    """G2: the admin view of users carries no secret material."""
    response = client.get("/users", headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 200
    for item in response.json()["items"]:
        assert set(item) == {
            "id",
            "email",
            "display_name",
            "is_active",
            "is_admin",
            "email_verified",
            "created_at",
            "updated_at",
        }
    assert user["tokens"]["refresh_token"] not in json.dumps(response.json())
