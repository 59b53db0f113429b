"""/users/me/factors/passkeys: passkeys added over the JSON API by a software
authenticator on the relying party's origin (M9), recovery codes with the first
factor only (M2), every change ending every token and mailed (M3), a login older
than five minutes answered with the RFC 9470 challenge (M12), and 4xx, never 5xx,
for any body; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, register
from tests.support.callers import first_party_headers
from tests.support.factor_api import events, fresh_token, mails
from tests.support.factors import verified
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem
from tests.support.soft_authenticator import SoftAuthenticator

BASE = "/users/me/factors/passkeys"


@pytest.fixture
def ada(client: TestClient, app: FastAPI) -> dict[str, str]:
    """Ada, verified, with a first-party token from a login just now."""
    register(client, EMAIL)
    verified(app, EMAIL)
    return first_party_headers(client)


def add(
    client: TestClient, headers: dict[str, str], authenticator: SoftAuthenticator, name: str
) -> Any:
    options = client.post(f"{BASE}/options", headers=headers)
    assert options.status_code == 200, options.text
    answer = authenticator.create(options.json(), ISSUER)
    return client.post(BASE, json={"name": name, "response": answer}, headers=headers)


def test_m9_add_list_rename_remove_over_the_api(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    options = client.post(f"{BASE}/options", headers=ada)
    assert options.headers["cache-control"] == "no-store"
    body = options.json()
    assert body["rp"]["id"] == "testserver"
    assert body["authenticatorSelection"]["residentKey"] == "required"
    added = add(client, ada, SoftAuthenticator(), "Laptop")
    assert added.status_code == 201, added.text
    assert added.headers["cache-control"] == "no-store"
    first = added.json()
    assert first["name"] == "Laptop" and first["synced"] is False
    assert len(first["recovery_codes"]) == 10
    assert set(first) == {"id", "name", "created_at", "last_used_at", "synced", "recovery_codes"}
    # M3: the caller's token ended with the change.
    assert client.get(BASE, headers=ada).status_code == 401
    ada = fresh_token(app, ada)
    second = add(client, ada, SoftAuthenticator(), "Phone")
    assert second.status_code == 201, second.text
    assert second.json()["recovery_codes"] is None
    ada = fresh_token(app, ada)
    listed = client.get(BASE, headers=ada).json()["passkeys"]
    assert [item["name"] for item in listed] == ["Laptop", "Phone"]
    assert client.get("/users/me/factors", headers=ada).json()["passkeys"] == 2

    renamed = client.patch(f"{BASE}/{first['id']}", json={"name": "Work"}, headers=ada)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Work"
    gone = client.delete(f"{BASE}/{first['id']}", headers=ada)
    assert gone.status_code == 204, gone.text
    assert client.get(BASE, headers=ada).status_code == 401
    ada = fresh_token(app, ada)
    assert [item["name"] for item in client.get(BASE, headers=ada).json()["passkeys"]] == ["Phone"]
    missing = client.delete(f"{BASE}/{first['id']}", headers=ada)
    assert missing.status_code == 404
    assert mails(app, EMAIL)[-3:] == ["passkey_added", "passkey_added", "passkey_removed"]
    assert [row.details for row in events(app, "factor.added")]


def test_m9_another_origin_is_refused(client: TestClient, ada: dict[str, str]) -> None:
    options = client.post(f"{BASE}/options", headers=ada).json()
    answer = SoftAuthenticator().create(options, "https://frontend.example")
    refused = client.post(BASE, json={"name": "Key", "response": answer}, headers=ada)
    assert refused.status_code == 403
    assert assert_problem(refused)["code"] == "invalid_passkey"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", f"{BASE}/options", None),
        ("POST", BASE, {"name": "Key", "response": {}}),
        ("DELETE", f"{BASE}/{uuid.uuid4()}", None),
    ],
)
def test_m12_an_old_login_gets_the_rfc_9470_challenge(
    client: TestClient, app: FastAPI, ada: dict[str, str], method: str, path: str, body: Any
) -> None:
    old = fresh_token(app, ada, age=301)
    refused = client.request(method, path, json=body, headers=old)
    assert refused.status_code == 401, refused.text
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge


GARBAGE: list[Any] = [
    None,
    [],
    "text",
    {},
    {"name": "Key"},
    {"response": {}},
    {"name": "", "response": {}},
    {"name": "x" * 65, "response": {}},
    {"name": "Key", "response": "not an object"},
    {"name": "Key", "response": {}},
    {"name": "Key", "response": {"id": 5}},
    {"name": "Key", "response": {"id": "AA", "rawId": "AA", "type": "public-key"}},
    {
        "name": "Key",
        "response": {
            "id": "AA",
            "rawId": "AA",
            "type": "public-key",
            "response": {"clientDataJSON": "%%%", "attestationObject": "oA"},
        },
    },
    {"name": "Key", "response": {}, "extra": 1},
]


@pytest.mark.parametrize("body", GARBAGE)
def test_m9_garbage_bodies_are_4xx(client: TestClient, ada: dict[str, str], body: Any) -> None:
    answer = client.post(BASE, json=body, headers=ada)
    assert 400 <= answer.status_code < 500, answer.text
    assert_problem(answer)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PATCH", f"{BASE}/not-a-uuid", {"name": "x"}),
        ("PATCH", f"{BASE}/{uuid.uuid4()}", {"name": "x"}),
        ("PATCH", f"{BASE}/{uuid.uuid4()}", {"name": ""}),
        ("PATCH", f"{BASE}/{uuid.uuid4()}", {"name": "\u0007"}),
        ("DELETE", f"{BASE}/not-a-uuid", None),
    ],
)
def test_m9_other_garbage_is_4xx(
    client: TestClient, ada: dict[str, str], method: str, path: str, body: Any
) -> None:
    answer = client.request(method, path, json=body, headers=ada)
    assert 400 <= answer.status_code < 500, answer.text


def test_m3_an_unverified_address_gets_no_options(client: TestClient) -> None:
    register(client, EMAIL)
    headers = first_party_headers(client)
    refused = client.post(f"{BASE}/options", headers=headers)
    assert refused.status_code == 403
    assert assert_problem(refused)["code"] == "email_not_verified"
