"""The Authlib adapter on its own: request snapshots, and a real Authlib grant
served through it."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from userservice.oauth.adapter import (
    MalformedRequest,
    RequestSnapshot,
    StarletteAuthorizationServer,
    snapshot,
)


class _Client(ClientMixin):  # type: ignore[misc]
    client_id = "svc"
    secret = "s3cret-value"

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s == "users:read")

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


def _server() -> StarletteAuthorizationServer:
    server = StarletteAuthorizationServer()
    server.query_client = lambda client_id: _Client() if client_id == "svc" else None
    server.save_token = lambda token, request: None

    def generate(**kwargs: Any) -> dict[str, Any]:
        return {
            "access_token": f"at-{int(time.time())}",
            "token_type": "Bearer",
            "expires_in": 60,
            "scope": kwargs.get("scope") or "",
        }

    server.register_token_generator("default", generate)
    server.register_grant(ClientCredentialsGrant)
    return server


def _app(seen: list[RequestSnapshot]) -> Starlette:
    server = _server()

    async def token(request: Request) -> Response:
        try:
            snap = await snapshot(request)
        except MalformedRequest as exc:
            return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
        seen.append(snap)
        response: Response = await anyio.to_thread.run_sync(server.create_token_response, snap)
        return response

    return Starlette(routes=[Route("/token", token, methods=["POST"])])


@pytest.fixture
def seen() -> list[RequestSnapshot]:
    return []


@pytest.fixture
def http(seen: list[RequestSnapshot]) -> TestClient:
    return TestClient(_app(seen), base_url="https://as.example")


def test_a_real_authlib_grant_runs_through_the_adapter(http: TestClient) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "users:read"},
        auth=("svc", "s3cret-value"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    assert response.json()["scope"] == "users:read"
    assert response.headers["cache-control"] == "no-store"


def test_client_authentication_failure_is_401_with_a_challenge(http: TestClient) -> None:
    response = http.post("/token", data={"grant_type": "client_credentials"}, auth=("svc", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"


def test_repeated_parameters_stay_visible(http: TestClient, seen: list[RequestSnapshot]) -> None:
    http.post(
        "/token?x=1&x=2",
        content=b"grant_type=client_credentials&scope=a&scope=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=("svc", "wrong"),
    )
    snap = seen[-1]
    assert snap.form.getlist("scope") == ["a", "b"]
    assert snap.query.getlist("x") == ["1", "2"]
    assert sorted(snap.form.repeated()) == ["scope"]
    assert snap.values.getlist("scope") == ["a", "b"]
    # Header names are case-insensitive, as HTTP says.
    assert snap.headers["AUTHORIZATION"] == snap.headers["authorization"]


def test_a_body_that_is_not_a_form_is_refused(http: TestClient) -> None:
    response = http.post("/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_too_many_fields_are_refused(http: TestClient) -> None:
    body = "&".join(f"f{i}=1" for i in range(1000)).encode()
    response = http.post(
        "/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400


def test_plain_http_is_refused_by_authlib() -> None:
    """Authlib refuses non-TLS requests (only loopback may use http); we never set
    AUTHLIB_INSECURE_TRANSPORT in the package."""
    client = TestClient(_app([]), base_url="http://as.example")
    response = client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=("svc", "s3cret-value")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"
