"""client_credentials (RFC 6749 §4.4): a confidential client acting
for itself gets a token with no user behind it and no refresh token."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from tests.support.oauth_clients import SECRET, add_client, basic_auth


def _service(app: FastAPI, client_id: str = "reporting", scope: str = "users:read") -> str:
    return add_client(
        app,
        client_id,
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("client_credentials",),
        scope=scope,
    )


def _token(client: TestClient, client_id: str = "reporting", **form: str) -> httpx.Response:
    return client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic_auth(client_id, SECRET),
    )


def test_service_token_reads_users_with_users_read(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    _service(app)
    response = _token(client, scope="users:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and body["scope"] == "users:read"
    assert response.headers["cache-control"] == "no-store"
    token = body["access_token"]
    found = client.get(f"/users/{user['id']}", headers=bearer(token))
    assert found.status_code == 200 and found.json()["email"] == "ada@example.com"
    # There is no user behind the token: user-only routes refuse it (S1).
    assert client.get("/users/me", headers=bearer(token)).status_code == 403
    assert client.get("/users", headers=bearer(token)).status_code == 403


def test_service_token_without_users_read_sees_nobody(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    _service(app, scope="users:read openid")
    token = _token(client, scope="openid").json()["access_token"]
    refused = client.get(f"/users/{user['id']}", headers=bearer(token))
    assert refused.status_code == 403
    assert 'scope="users:read"' in refused.headers["www-authenticate"]


def test_scope_beyond_registration_is_invalid_scope(app: FastAPI, client: TestClient) -> None:
    """C13."""
    _service(app)
    response = _token(client, scope="admin")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_client_not_registered_for_the_grant_is_unauthorized(
    app: FastAPI, client: TestClient
) -> None:
    """C1: only clients registered for client_credentials may use it."""
    add_client(
        app,
        "web",
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("authorization_code",),
        scope="openid",
    )
    response = _token(client, "web")
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"


def test_wrong_secret_is_invalid_client(app: FastAPI, client: TestClient) -> None:
    """C3."""
    _service(app)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth("reporting", "wrong"),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


def test_public_client_cannot_use_client_credentials(app: FastAPI, client: TestClient) -> None:
    add_client(app, "spa", grant_types=("client_credentials",), scope="users:read")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "spa"}
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "unauthorized_client")


def test_service_token_revocation_and_introspection(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C9/C10 for tokens without a user."""
    _service(app)
    token = _token(client, scope="users:read").json()["access_token"]
    seen = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth("reporting", SECRET)
    ).json()
    assert seen["active"] is True and seen["sub"] == "reporting" and "username" not in seen
    revoked = client.post(
        "/oauth/revoke", data={"token": token}, headers=basic_auth("reporting", SECRET)
    )
    assert revoked.status_code == 200
    assert client.get(f"/users/{user['id']}", headers=bearer(token)).status_code == 401
    after = client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth("reporting", SECRET)
    ).json()
    assert after == {"active": False}
