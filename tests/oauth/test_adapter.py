"""The Authlib adapter on its own: request snapshots, and a real Authlib
authorization grant served through it."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from userservice.oauth.adapter import (
    MalformedRequest,
    MultiDict,
    RequestSnapshot,
    StarletteAuthorizationServer,
    snapshot,
)
from userservice.oauth.errors import DESCRIPTIONS

REDIRECT = "https://app.example/cb"


class _Client(ClientMixin):  # type: ignore[misc]
    client_id = "app"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return REDIRECT

    def get_allowed_scope(self, scope: str) -> str | None:
        return scope if scope in ("", None, "profile") else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == REDIRECT

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"


class _User:
    def get_user_id(self) -> str:
        return "user-1"


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    saved: ClassVar[list[str]] = []

    def save_authorization_code(self, code: str, request: Any) -> None:
        self.saved.append(code)


def _app(seen: list[RequestSnapshot]) -> Starlette:
    server = StarletteAuthorizationServer()
    server.query_client = lambda client_id: _Client() if client_id == "app" else None
    server.register_grant(_CodeGrant)

    async def authorize(request: Request) -> Response:
        try:
            snap = await snapshot(request)
        except MalformedRequest as exc:
            return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
        seen.append(snap)

        def run() -> Response:
            try:
                grant = server.get_consent_grant(snap, _User())
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            response: Response = server.create_authorization_response(snap, _User(), grant)
            return response

        return await anyio.to_thread.run_sync(run)

    return Starlette(routes=[Route("/authorize", authorize, methods=["GET", "POST"])])


@pytest.fixture
def seen() -> list[RequestSnapshot]:
    return []


@pytest.fixture
def http(seen: list[RequestSnapshot]) -> TestClient:
    return TestClient(_app(seen), base_url="https://as.example")


def _query(response: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["location"]).query)


def test_a_real_authlib_grant_runs_through_the_adapter(http: TestClient) -> None:
    _CodeGrant.saved.clear()
    response = http.get(
        "/authorize",
        params={"response_type": "code", "client_id": "app", "scope": "profile", "state": "s1"},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    back = _query(response)
    assert back["state"] == ["s1"] and back["code"] == _CodeGrant.saved
    assert response.headers["location"].startswith(REDIRECT + "?")


def test_authlib_errors_leave_with_our_fixed_description(http: TestClient) -> None:
    """Authlib's own description quotes the request; ours is fixed."""
    response = http.get(
        "/authorize",
        params={"response_type": "code", "client_id": "app", "scope": "admin", "state": "s2"},
        follow_redirects=False,
    )
    assert response.status_code == 302
    back = _query(response)
    assert back["error"] == ["invalid_scope"] and back["state"] == ["s2"]
    assert back["error_description"] == [DESCRIPTIONS["invalid_scope"]]


def test_an_error_without_a_redirect_is_json_and_never_cached(http: TestClient) -> None:
    response = http.get("/authorize", params={"response_type": "code", "client_id": "nobody"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"


def test_repeated_parameters_stay_visible(http: TestClient, seen: list[RequestSnapshot]) -> None:
    http.post(
        "/authorize?x=1&x=2",
        content=b"response_type=code&scope=a&scope=b",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": "x"},
    )
    snap = seen[-1]
    assert snap.form.getlist("scope") == ["a", "b"]
    assert snap.query.getlist("x") == ["1", "2"]
    assert sorted(snap.form.repeated()) == ["scope"]
    assert snap.values.getlist("scope") == ["a", "b"]
    # Header names are case-insensitive, as HTTP says.
    assert snap.headers["AUTHORIZATION"] == snap.headers["authorization"]


def test_a_body_that_is_not_a_form_is_refused(http: TestClient) -> None:
    response = http.post("/authorize", json={"response_type": "code"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_too_many_fields_are_refused(http: TestClient) -> None:
    body = "&".join(f"f{i}=1" for i in range(1000)).encode()
    response = http.post(
        "/authorize", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400


def test_plain_http_is_refused_by_authlib() -> None:
    """Authlib refuses non-TLS requests (only loopback may use http); we never set
    AUTHLIB_INSECURE_TRANSPORT in the package."""
    server = StarletteAuthorizationServer()
    snap = RequestSnapshot(
        method="GET",
        url="http://as.example/authorize?response_type=code",
        headers=Headers(),
        query=MultiDict(),
    )
    with pytest.raises(InsecureTransportError):
        server.create_oauth2_request(snap)
