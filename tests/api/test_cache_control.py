"""Responses that may carry personal data or tokens are never stored by a cache
(S9): `Cache-Control: no-store` is the default for every response, and only a
short list of public documents may be cached."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.admin_clients import BACKEND, create
from tests.support.oauth_clients import basic_auth

# Public documents: the same for every caller, and nothing personal in them.
CACHEABLE = {
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/oauth/jwks",
    "/openapi.json",
}


def assert_no_store(response: httpx.Response, label: str) -> None:
    assert response.headers.get("cache-control") == "no-store", (
        label,
        response.status_code,
        response.headers.get("cache-control"),
    )


class Walker:
    """Calls every documented operation with arguments that reach its success path
    where they can (an administrator, real ids, valid bodies)."""

    def __init__(self, app: FastAPI, client: TestClient, admin: dict[str, Any]) -> None:
        self.client = client
        self.admin = bearer(admin["tokens"]["access_token"])
        self.ada = register(client, "ada@example.com", display_name="Ada")
        self.ada_tokens = login(client, "ada@example.com")
        self.backend = create(client, self.admin, **BACKEND)
        self.serial = 0

    def fresh_user(self) -> tuple[str, dict[str, str]]:
        self.serial += 1
        email = f"walker{self.serial}@example.com"
        created = register(self.client, email)
        return str(created["id"]), bearer(login(self.client, email)["access_token"])

    def request(self, method: str, path: str) -> httpx.Response:
        auth = self.admin
        params = {
            "user_id": str(self.ada["id"]),
            "client_id": "nobody",
            "session_id": "nobody",
            "passkey_id": str(uuid.uuid4()),
        }
        kwargs: dict[str, Any] = {}
        if path in ("/users/me", "/users/me/sessions") and method == "DELETE":
            # Never delete the administrator, or end their tokens, mid-walk.
            _, auth = self.fresh_user()
        elif path == "/users/{user_id}" and method == "DELETE":
            params["user_id"] = self.fresh_user()[0]
        elif path.startswith("/admin/clients/{client_id}"):
            params["client_id"] = create(self.client, self.admin, **BACKEND)["client_id"]
        if path == "/users" and method == "POST":
            self.serial += 1
            kwargs["json"] = {"email": f"new{self.serial}@example.com", "password": PASSWORD}
        elif path == "/admin/clients" and method == "POST":
            kwargs["json"] = BACKEND
        elif method == "PATCH":
            kwargs["json"] = {"display_name": "Walked"}
            if path.startswith("/admin/clients"):
                kwargs["json"] = {"client_name": "Walked"}
        elif path == "/oauth/token":
            auth = {}
            kwargs["data"] = {
                "grant_type": "password",
                "username": "ada@example.com",
                "password": PASSWORD,
            }
        elif path in ("/oauth/revoke", "/oauth/introspect"):
            auth = basic_auth(self.backend["client_id"], self.backend["client_secret"])
            kwargs["data"] = {"token": self.ada_tokens["access_token"]}
        elif path == "/oauth/userinfo":
            auth = bearer(self.ada_tokens["access_token"])
        url = path.format(**params)
        return self.client.request(method, url, headers=auth, **kwargs)


def test_every_documented_operation_answers_no_store(
    app: FastAPI, client: TestClient, admin: dict[str, Any]
) -> None:
    """Walks /openapi.json: each answer, success or error, signed in or not."""
    walker = Walker(app, client, admin)
    paths: dict[str, dict[str, Any]] = client.get("/openapi.json").json()["paths"]
    succeeded: set[tuple[str, str]] = set()
    for path, operations in paths.items():
        for method in (m.upper() for m in operations):
            label = f"{method} {path}"
            response = walker.request(method, path)
            if response.is_success:
                succeeded.add((method, path))
            anonymous = client.request(
                method,
                path.format(
                    user_id=uuid.uuid4(), client_id="x", session_id="x", passkey_id=uuid.uuid4()
                ),
            )
            if path in CACHEABLE:
                assert "no-store" not in response.headers.get("cache-control", ""), label
                continue
            assert_no_store(response, label)
            assert_no_store(anonymous, f"{label} (anonymous)")
    # The walk reached the data, not only the refusals.
    gets = {("GET", p) for p, ops in paths.items() if "get" in ops}
    assert gets <= succeeded, sorted(gets - succeeded)
    assert len(succeeded) >= len(gets) + 10, sorted(succeeded)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/login"),
        ("GET", "/account"),
        ("GET", "/oauth/authorize?client_id=nobody"),
        ("GET", "/nowhere"),
        ("PUT", "/users/me"),
        ("GET", "/users?a=1&a=2"),
        ("POST", "/users/me/grants"),
        ("GET", "/docs/oauth2-redirect?code=abc&state=xyz"),
    ],
)
def test_pages_and_refusals_answer_no_store(client: TestClient, method: str, url: str) -> None:
    assert_no_store(client.request(method, url), f"{method} {url}")


def test_a_route_added_later_is_no_store_by_default(app: FastAPI) -> None:
    """Safe by default: a new route that forgets the header, or asks for caching
    outside the public list, is still never stored."""

    @app.get("/new-personal")
    async def new_personal() -> dict[str, str]:
        return {"email": "ada@example.com"}

    @app.get("/new-cached")
    async def new_cached() -> JSONResponse:
        return JSONResponse({"email": "ada@example.com"}, headers={"Cache-Control": "public"})

    with TestClient(app, base_url="https://testserver") as client:
        for url in ("/new-personal", "/new-cached"):
            response = client.get(url)
            assert response.status_code == 200
            assert_no_store(response, url)
            assert response.headers.get_list("cache-control") == ["no-store"]


def test_public_documents_stay_cacheable(client: TestClient) -> None:
    for url in ("/.well-known/openid-configuration", "/oauth/jwks"):
        assert client.get(url).headers["cache-control"] == "public, max-age=300"
    static = client.get("/static/swagger-ui/swagger-ui.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")
