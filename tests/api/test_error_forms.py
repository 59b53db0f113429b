"""Requests refused before their endpoint runs (I1, I2, G4, C12, C11) answer in the
form their endpoint speaks: RFC 6749 §5.2 JSON on the OAuth endpoints, a plain
answer on the pages people navigate to, RFC 9457 problem details elsewhere; and
every problem with the same status has the same title."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from tests.support.oauth_clients import assert_oauth_error
from tests.support.problems import MB, assert_problem

OAUTH_FORM_ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def assert_rfc6749_refusal(response: httpx.Response, status: int) -> None:
    """RFC 6749 §5.2 JSON, never cached (C11): what an OAuth client library parses."""
    assert_oauth_error(response, status, "invalid_request")
    assert response.headers["content-type"] == "application/json"


def _streamed(size: int) -> Iterator[bytes]:
    yield b"grant_type=password&password="
    for _ in range(size // 65536 + 1):
        yield b"x" * 65536


@pytest.mark.parametrize("path", [*OAUTH_FORM_ENDPOINTS, "/oauth/userinfo"])
def test_announced_oversized_body_on_oauth_endpoint_is_rfc6749_error(
    client: TestClient, path: str
) -> None:
    """I2: a Content-Length over the form limit is refused in the OAuth error form."""
    response = client.post(path, content=b"token=" + b"x" * (1 * MB), headers=FORM)
    assert_rfc6749_refusal(response, 413)


@pytest.mark.parametrize("path", OAUTH_FORM_ENDPOINTS)
def test_streamed_oversized_body_on_oauth_endpoint_is_rfc6749_error(
    client: TestClient, path: str
) -> None:
    """I2: a chunked body is counted as it arrives and refused in the same form."""
    response = client.post(path, content=_streamed(1 * MB), headers=FORM)
    assert "content-length" not in response.request.headers
    assert_rfc6749_refusal(response, 413)


@pytest.mark.parametrize("streamed", [False, True], ids=["announced", "streamed"])
def test_oversized_body_on_authorize_page_is_never_json(client: TestClient, streamed: bool) -> None:
    """/oauth/authorize is a page a browser navigates to: no JSON of either kind."""
    content = _streamed(1 * MB) if streamed else b"client_id=" + b"x" * (1 * MB)
    response = client.post("/oauth/authorize", content=content, headers=FORM)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(("text/plain", "text/html"))
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        # I1: a huge malformed Content-Type, and 100,000 fields (over the form limit).
        (
            "POST",
            "/oauth/token",
            {"content": b"grant_type=password", "headers": {"Content-Type": "=" * 5000}},
            400,
        ),
        (
            "POST",
            "/oauth/token",
            {"content": "&".join(f"f{i}=v" for i in range(100_000)).encode(), "headers": FORM},
            413,
        ),
        ("POST", "/oauth/token?scope=a&scope=b", {"data": {"grant_type": "password"}}, 400),
        ("POST", "/oauth/token", {"headers": {"X-Padding": "p" * 40_000}}, 431),
        ("POST", "/oauth/revoke", {"headers": {"Content-Length": "abc"}}, 400),
        ("GET", "/oauth/userinfo?access_token=abc", {}, 400),
        ("GET", "/oauth/token", {}, 405),
    ],
)
def test_refusals_on_oauth_endpoints_are_rfc6749_errors(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    """I1/I2/G4/C12 on an OAuth endpoint: the client's OAuth library can read it."""
    response = client.request(method, url, **kwargs)
    assert_rfc6749_refusal(response, status)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/oauth/authorize?client_id=a&client_id=b", {}, 400),
        ("GET", "/login", {"headers": {"X-Padding": "p" * 40_000}}, 431),
        ("PUT", "/oauth/authorize", {}, 405),
    ],
)
def test_refusals_on_pages_are_never_json(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(("text/plain", "text/html"))


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("POST", "/users", {"content": b"x" * (3 * MB)}, 413),
        ("POST", "/users?a=1&a=2", {"json": {}}, 400),
        ("GET", "/users/me", {"headers": {"X-Padding": "p" * 40_000}}, 431),
    ],
)
def test_refusals_elsewhere_stay_problem_json(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert_problem(response)


def _chunked_users_body() -> Iterator[bytes]:
    yield b'{"email": "big@example.com", "password": "' + PASSWORD.encode()
    for _ in range(48):
        yield b"p" * 65536
    yield b'"}'


def test_problems_with_the_same_status_have_the_same_title(client: TestClient) -> None:
    """One title per status, whichever layer refused the request."""
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/users", {"content": b"x" * (3 * MB)}),  # 413 announced, refused up front
        (
            "POST",
            "/users",
            {"content": _chunked_users_body(), "headers": {"Content-Type": "application/json"}},
        ),  # 413 while streaming
        ("POST", "/users", {"content": b"{", "headers": {"Content-Type": "application/json"}}),
        ("GET", "/users?a=1&a=2", {}),  # 400 in the middleware
        ("GET", "/users/me?access_token=x", {}),  # 400 in the middleware
        ("POST", "/users", {"headers": {"Content-Length": "abc"}}),  # 400 in the middleware
        ("GET", "/users/me", {"headers": {"X-Padding": "p" * 40_000}}),  # 431
        ("GET", "/users/me", {}),  # 401
        ("GET", "/nowhere", {}),  # 404
        ("PUT", "/users/me", {}),  # 405
        ("POST", "/users", {"json": {"email": "x"}}),  # 422
    ]
    titles: dict[int, set[str]] = {}
    for method, url, kwargs in calls:
        response = client.request(method, url, **kwargs)
        body = assert_problem(response)
        titles.setdefault(response.status_code, set()).add(body["title"])
    assert {400, 401, 404, 405, 413, 422, 431} <= titles.keys()
    assert {status: found for status, found in titles.items() if len(found) > 1} == {}
    assert titles[413] == {"Content Too Large"}
    assert titles[431] == {"Request Header Fields Too Large"}
