"""Hostile and malformed input, error bodies and security headers (G3, G4, E1, I1,
I2, C12, H1, F6), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, register, user_count
from tests.support.problems import MB, assert_problem
from userservice.app import create_app
from userservice.settings import Settings


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


# --- G3: search input ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "name"])
@pytest.mark.parametrize("needle", ["' OR 1=1--", "%", "_", "\x00", "a%", "\\", "*", "') --"])
def test_search_wildcards_and_injection_match_literally_or_422(
    client: TestClient, admin: dict[str, Any], field: str, needle: str
) -> None:
    """G3: SQL and LIKE metacharacters are literal; NUL is refused; never a 500."""
    register(client, "plain@example.com", display_name="Plain")
    register(client, "under_score@example.com", display_name="Under_score")
    response = client.get(
        "/users", params={field: needle}, headers=bearer(admin["tokens"]["access_token"])
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_problem(response)
        return
    items = response.json()["items"]
    for item in items:
        haystack = item["email"] if field == "email" else (item["display_name"] or "")
        assert needle.lower() in haystack.lower(), (needle, item)
    if needle == "_":
        assert [i["email"] for i in items] == ["under_score@example.com"]


def test_search_with_nul_is_422(client: TestClient, admin: dict[str, Any]) -> None:
    """G3: a NUL byte (%00) in the search text is refused, not passed to SQL."""
    response = client.get("/users?email=a%00b", headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 422
    assert_problem(response)


# --- G4: unknown fields, long strings, duplicated parameters --------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/users", {"email": "x@example.com", "password": PASSWORD, "role": "admin"}),
        ("POST", "/users", {"email": "x@example.com", "password": PASSWORD, "password_hash": "h"}),
        ("PATCH", "/users/me", {"display_name": "X", "is_admin": True}),
        ("PATCH", "/users/me", {"nickname": "X"}),
    ],
)
def test_unknown_fields_are_422(
    client: TestClient,
    app: FastAPI,
    user: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    """G4 / E9: unknown fields are refused, never ignored or assigned."""
    auth = bearer(user["tokens"]["access_token"])
    response = client.request(method, path, json=body, headers=auth)
    assert response.status_code == 422
    assert_problem(response)
    me = client.get("/users/me", headers=auth).json()
    assert me["is_admin"] is False and me["display_name"] == "Ada"
    assert user_count(app) == 1


def test_over_long_display_name_is_422(client: TestClient, user: dict[str, Any]) -> None:
    """G4: display_name is at most 200 characters."""
    auth = bearer(user["tokens"]["access_token"])
    too_long = "n" * 201
    register_response = client.post(
        "/users", json={"email": "b@example.com", "password": PASSWORD, "display_name": too_long}
    )
    assert register_response.status_code == 422
    assert (
        client.patch("/users/me", json={"display_name": too_long}, headers=auth).status_code == 422
    )
    ok = client.patch("/users/me", json={"display_name": "n" * 200}, headers=auth)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "url", ["/users?email=a&email=b", "/users?limit=1&limit=2", "/users/me?x=1&x=1"]
)
def test_duplicated_query_parameters_are_400(
    client: TestClient, admin: dict[str, Any], url: str
) -> None:
    """G4: a repeated parameter could smuggle a second value past a check."""
    response = client.get(url, headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 400
    assert assert_problem(response)["code"] == "duplicate_parameter"


@pytest.mark.parametrize("raw", [b'{"email": ', b"{bad json}", b"\xff\xfe\x00", b"[1, 2"])
def test_malformed_json_is_400_problem(client: TestClient, app: FastAPI, raw: bytes) -> None:
    response = client.post("/users", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert assert_problem(response)["code"] == "malformed_body"
    assert user_count(app) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_4xx(client: TestClient, app: FastAPI, content_type: str) -> None:
    body = b'{"email": "w@example.com", "password": "correct horse battery staple"}'
    response = client.post("/users", content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500
    assert_problem(response)
    assert user_count(app) == 0


# --- E1 / I2: size limits ---------------------------------------------------------------


def test_one_megabyte_password_is_422_before_hashing(client: TestClient, app: FastAPI) -> None:
    """E1: an enormous password is refused by validation, never fed to argon2."""
    body = {"email": "big@example.com", "password": "p" * MB}
    response, elapsed = timed(lambda: client.post("/users", json=body))
    assert response.status_code == 422
    assert_problem(response)
    assert elapsed < 0.5, elapsed
    assert "p" * 100 not in response.text
    assert user_count(app) == 0


def test_body_over_the_limit_is_413(client: TestClient, app: FastAPI) -> None:
    body = {"email": "big@example.com", "password": PASSWORD, "display_name": "d" * (3 * MB)}
    response = client.post("/users", json=body)
    assert response.status_code == 413
    assert_problem(response)
    assert user_count(app) == 0


def test_chunked_body_over_the_limit_without_content_length_is_413(
    client: TestClient, app: FastAPI
) -> None:
    """I2: a streamed body is counted as it arrives, not trusted to be small."""

    def chunks() -> Iterator[bytes]:
        yield b'{"email": "big@example.com", "password": "' + b"p" * 1000
        for _ in range(48):
            yield b"p" * 65536
        yield b'"}'

    response = client.post("/users", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert_problem(response)
    assert user_count(app) == 0


def test_malformed_long_content_type_on_token_endpoint_is_fast_4xx(client: TestClient) -> None:
    """I1: a 5,000-character malformed Content-Type is answered in under 1 s."""
    content_type = "application/x-www-form-urlencoded;" + ";a=" * 1666
    assert len(content_type) >= 5000
    for header in (content_type, "=" * 5000, "multipart/form-data; boundary=" + "-" * 5000):
        response, elapsed = timed(
            lambda h=header: client.post(  # type: ignore[misc]
                "/oauth/token",
                content=b"grant_type=password&username=a%40b.c&password=x",
                headers={"Content-Type": h},
            )
        )
        assert 400 <= response.status_code < 500, response.text
        assert elapsed < 1.0, elapsed


def test_form_with_100000_fields_is_refused_quickly(client: TestClient) -> None:
    """I2: the field count cannot make the parser spin or allocate without bound."""
    body = "&".join(f"f{i}=v" for i in range(100_000)).encode()
    response, elapsed = timed(
        lambda: client.post(
            "/oauth/token",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert response.status_code in (400, 413)
    assert elapsed < 1.0, elapsed


def test_form_with_one_10_megabyte_field_is_413_quickly(client: TestClient) -> None:
    """I2: one 10 MB field is refused before it is parsed."""
    body = b"grant_type=password&username=a%40b.c&password=" + b"x" * (10 * MB)
    response, elapsed = timed(
        lambda: client.post(
            "/oauth/token",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert response.status_code == 413
    assert elapsed < 1.0, elapsed


# --- C12 -----------------------------------------------------------------------------


def test_access_token_in_query_is_refused_even_when_valid(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C12: tokens in URLs leak into logs and Referers; refuse them outright."""
    token = user["tokens"]["access_token"]
    only_query = client.get("/users/me", params={"access_token": token})
    assert only_query.status_code == 400
    assert assert_problem(only_query)["code"] == "token_in_query"
    with_header = client.get("/users/me", params={"access_token": token}, headers=bearer(token))
    assert with_header.status_code == 400
    assert client.get("/users/me", headers=bearer(token)).status_code == 200


# --- every error is a problem -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/users/me", {}, 401),
        ("GET", "/users/me", {"headers": {"Authorization": "Bearer not.a.jwt"}}, 401),
        ("GET", "/users/me", {"headers": {"Authorization": "Basic %%%"}}, 401),
        ("GET", "/no/such/path", {}, 404),
        ("PUT", "/users/me", {}, 405),
        ("POST", "/users", {"json": {"email": "x"}}, 422),
        ("POST", "/users", {"json": {"email": "a@example.com", "password": "short"}}, 422),
        ("POST", "/users", {"content": b"{", "headers": {"Content-Type": "application/json"}}, 400),
        ("GET", "/users?a=1&a=2", {}, 400),
        ("POST", "/users", {"headers": {"Content-Length": "99999999"}}, 413),
        ("POST", "/users", {"headers": {"Content-Length": "abc"}}, 400),
    ],
)
def test_every_error_body_is_problem_json(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert_problem(response)


# --- H1 -------------------------------------------------------------------------------


def test_unexpected_exception_is_generic_500_with_request_id(
    make_settings: Callable[..., Settings],
) -> None:
    """H1: no stack trace, exception text or SQL in the body; a request id to find
    the details in the log."""
    app = create_app(make_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret SQL text: SELECT password_hash FROM users")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    body = assert_problem(response)
    assert body["request_id"]
    for leak in ("secret SQL text", "SELECT", "RuntimeError", "Traceback", "password_hash"):
        assert leak not in response.text
    assert response.headers.get("x-request-id") == body["request_id"]
    assert_security_headers(response)


# --- F6 / G7: security headers ---------------------------------------------------------


def assert_security_headers(response: httpx.Response) -> None:
    hsts = response.headers.get("strict-transport-security", "")
    max_age = dict(part.strip().partition("=")[::2] for part in hsts.split(";") if "=" in part).get(
        "max-age", "0"
    )
    assert int(max_age) >= 31536000, hsts
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("content-security-policy")
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("referrer-policy") == "no-referrer"
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/oauth/jwks", {}),
        ("GET", "/.well-known/oauth-authorization-server", {}),
        ("GET", "/users/me", {}),
        ("GET", "/nowhere", {}),
        ("POST", "/users", {"json": {"email": "h@example.com", "password": PASSWORD}}),
        ("POST", "/users", {"json": {}}),
        ("POST", "/oauth/token", {"data": {"grant_type": "password"}}),
        ("GET", "/users?a=1&a=1", {}),
        ("POST", "/users", {"content": b"x" * (3 * MB)}),
    ],
)
def test_security_headers_on_every_response(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """F6: HSTS >= 1 year, nosniff, CSP, no framing, no referrer; G7: no banner."""
    response = client.request(method, url, **kwargs)
    assert_security_headers(response)
