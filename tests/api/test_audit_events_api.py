"""GET /users/{user_id}/events (L25): an administrator reads the stored security
events about an account, newest first, with keyset pagination; on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer
from tests.support.admin_clients import BACKEND, WEB_APP, create
from tests.support.oauth_clients import user_basic

ADMIN_IP = "testclient"  # the `client` fixture's address


def admin_auth(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


def my_id(client: TestClient, auth: dict[str, str]) -> uuid.UUID:
    return uuid.UUID(client.get("/users/me", headers=auth).json()["id"])


def events_of(
    client: TestClient, admin: dict[str, Any], user_id: object, **params: Any
) -> dict[str, Any]:
    response = client.get(f"/users/{user_id}/events", params=params, headers=admin_auth(admin))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def walk(client: TestClient, admin: dict[str, Any], user_id: object, limit: int) -> list[int]:
    ids: list[int] = []
    cursor: str | None = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        page = events_of(client, admin, user_id, **params)
        assert len(page["items"]) <= limit
        ids += [event["id"] for event in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the pages never ended")


@pytest.fixture
def busy(client: TestClient, user: dict[str, Any], admin: dict[str, Any]) -> uuid.UUID:
    """The user's account after a failed login and three administrator changes."""
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": user["email"], "password": "wrong " * 3},
    )
    assert refused.status_code == 400
    for change in ({"display_name": "Ada L."}, {"is_active": False}, {"is_active": True}):
        changed = client.patch(f"/users/{user['id']}", json=change, headers=admin_auth(admin))
        assert changed.status_code == 200, changed.text
    return uuid.UUID(user["id"])


def test_only_an_administrator_reads_the_trail(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    path = f"/users/{user['id']}/events"
    assert client.get(path).status_code == 401
    own = client.get(path, headers=bearer(user["tokens"]["access_token"]))
    assert own.status_code == 403, own.text
    basic = client.get(path, headers=user_basic(user["email"], PASSWORD))
    assert basic.status_code == 403, basic.text
    assert client.get(path, headers=admin_auth(admin)).status_code == 200


def test_each_kind_of_action_is_in_the_trail(
    client: TestClient, admin: dict[str, Any], busy: uuid.UUID
) -> None:
    root = my_id(client, admin_auth(admin))
    items = events_of(client, admin, busy, limit=200)["items"]
    names = [event["event"] for event in items]
    assert names[-1] == "user.registered"  # newest first
    assert {"login.succeeded", "login.failed"} <= set(names)
    updates = [event for event in items if event["event"] == "admin.user_updated"]
    assert [(e["actor_id"], e["ip"], e["details"]) for e in updates] == [
        (str(root), ADMIN_IP, {"fields": "is_active"}),
        (str(root), ADMIN_IP, {"fields": "is_active"}),
        (str(root), ADMIN_IP, {"fields": "display_name"}),
    ]
    assert all(event["user_id"] == str(busy) for event in items)
    body = client.get(f"/users/{busy}/events", headers=admin_auth(admin)).text.lower()
    assert "ada@example.com" not in body and "ada l." not in body


def test_an_administrators_client_changes_are_in_their_trail(
    client: TestClient, admin: dict[str, Any]
) -> None:
    auth = admin_auth(admin)
    made = create(client, auth, **WEB_APP)["client_id"]
    assert client.patch(f"/admin/clients/{made}", json={"scope": "openid"}, headers=auth).is_success
    assert client.delete(f"/admin/clients/{made}", headers=auth).status_code == 204
    secret = create(client, auth, **BACKEND)
    assert client.post(f"/admin/clients/{secret['client_id']}/secret", headers=auth).is_success

    items = events_of(client, admin, my_id(client, auth))["items"]

    found = [
        (e["event"], e["client_id"], e["ip"]) for e in items if e["event"].startswith("admin.")
    ]
    assert found == [
        ("admin.client_secret_rotated", secret["client_id"], ADMIN_IP),
        ("admin.client_created", secret["client_id"], ADMIN_IP),
        ("admin.client_deleted", made, ADMIN_IP),
        ("admin.client_updated", made, ADMIN_IP),
        ("admin.client_created", made, ADMIN_IP),
    ]
    [updated] = [e for e in items if e["event"] == "admin.client_updated"]
    assert updated["details"] == {"fields": "scope"}
    assert secret["client_secret"] not in str(items)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_walk_every_event_once_newest_first(
    client: TestClient, admin: dict[str, Any], busy: uuid.UUID, limit: int
) -> None:
    everything = [event["id"] for event in events_of(client, admin, busy, limit=200)["items"]]
    assert len(everything) >= 6
    assert everything == sorted(everything, reverse=True)
    assert walk(client, admin, busy, limit) == everything


def test_an_id_with_no_events_is_an_empty_page(client: TestClient, admin: dict[str, Any]) -> None:
    assert events_of(client, admin, uuid.uuid4()) == {"items": [], "next_cursor": None}


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "!!!"},
        {"cursor": "a"},
        {"cursor": _cursor("abc")},
        {"cursor": _cursor("-1")},
        {"cursor": _cursor("+1")},
        {"cursor": _cursor("1" * 19)},
        {"cursor": _cursor("\u0661")},  # an Arabic-Indic digit: isdigit() but not ASCII
        {"cursor": "x" * 40},
        {"limit": "0"},
        {"limit": "201"},
    ],
)
def test_garbage_cursor_or_limit_is_422(
    client: TestClient, admin: dict[str, Any], user: dict[str, Any], params: dict[str, str]
) -> None:
    response = client.get(f"/users/{user['id']}/events", params=params, headers=admin_auth(admin))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_path_that_is_no_uuid_is_422(client: TestClient, admin: dict[str, Any]) -> None:
    response = client.get("/users/not-a-uuid/events", headers=admin_auth(admin))
    assert response.status_code == 422
