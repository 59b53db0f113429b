"""Callers of every kind for the access-policy tests: the user in person (Basic), a
first-party token (password grant), third-party tokens (authorization code with
PKCE, for any scope set), a service client's own token, and an admin; and the two
refusals a caller meets (a missing scope, first-party only)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login
from tests.support.oauth_clients import add_client, basic_auth, user_basic
from tests.support.oauth_flow import EMAIL, REDIRECT, add_app, obtain_code, redeem

THIRD_PARTY = "photo-app"
THIRD_PARTY_SCOPES = "openid profile profile:write email offline_access"
SERVICE = "reporting-job"
SERVICE_SECRET = "service-secret-0123456789abcdefghijklmnop"


def add_third_party(client: TestClient) -> None:
    add_app(client, THIRD_PARTY, scope=THIRD_PARTY_SCOPES)


def third_party_token(client: TestClient, scope: str) -> dict[str, Any]:
    """A token pair for the signed-in user, issued to the third-party app."""
    code, verifier = obtain_code(client, THIRD_PARTY, scope=scope, redirect_uri=REDIRECT)
    response = redeem(client, code, verifier, THIRD_PARTY)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def first_party_headers(client: TestClient, email: str = EMAIL) -> dict[str, str]:
    return bearer(login(client, email)["access_token"])


def basic_headers(email: str = EMAIL) -> dict[str, str]:
    return user_basic(email, PASSWORD)


def service_headers(client: TestClient, scope: str = "users:read") -> dict[str, str]:
    add_client(
        client.app,  # type: ignore[arg-type]
        SERVICE,
        secret=SERVICE_SECRET,
        auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        scope=scope,
    )
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic_auth(SERVICE, SERVICE_SECRET),
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def assert_insufficient_scope(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge
    assert response.json()["code"] == "insufficient_scope"


def assert_first_party_only(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "first_party_only"
