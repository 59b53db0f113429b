"""RFC 9110 §15.5.6: a 405 lists in `Allow` every method the resource supports,
not only those of the first route that matched the path.

`Allow` names exactly the methods the routes serve. FastAPI does not answer HEAD
for its operations, so HEAD is listed only where a route really serves it
(/openapi.json). OPTIONS is never listed: with CORS on, the CORS middleware
answers preflights before routing, and a plain OPTIONS is a 405 like any other
unsupported method."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from userservice.app import create_app
from userservice.settings import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allow_header(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def test_every_documented_path_lists_all_its_methods(
    client: TestClient, user: dict[str, Any]
) -> None:
    auth = bearer(user["tokens"]["access_token"])
    paths: dict[str, dict[str, Any]] = client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        documented = {m.upper() for m in operations}
        url = path.format(
            user_id=uuid.uuid4(),
            client_id="some-client",
            session_id="some-session",
            passkey_id=uuid.uuid4(),
        )
        for method in (m for m in METHODS if m not in documented):
            response = client.request(method, url, headers=auth)
            if method == "HEAD" and response.status_code != 405:
                assert "GET" in documented, (path, response.status_code)
                continue
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = allow_header(response.headers["allow"])
            assert allowed - {"HEAD"} == documented, (method, path, allowed)
            if "HEAD" in allowed:
                assert "GET" in documented
                assert client.head(url, headers=auth).status_code != 405
            checked += 1
    assert checked >= 3 * len(paths)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/users/me", {"GET", "PATCH", "DELETE"}),
        ("/oauth/authorize", {"GET", "POST"}),
        ("/oauth/userinfo", {"GET", "POST"}),
        ("/openapi.json", {"GET", "HEAD"}),
    ],
)
def test_allow_is_exact_for_shared_and_page_paths(
    client: TestClient, url: str, expected: set[str]
) -> None:
    response = client.put(url)
    assert response.status_code == 405
    assert allow_header(response.headers["allow"]) == expected


def test_static_files_keep_their_own_allow(client: TestClient) -> None:
    response = client.post("/static/pages.css")
    assert response.status_code == 405
    assert allow_header(response.headers["allow"]) == {"GET", "HEAD"}


def test_plain_options_is_405_with_cors_on(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(cors_origins=["https://app.example.com"]))
    with TestClient(app, base_url="https://testserver") as client:
        plain = client.options("/users/me")
        assert plain.status_code == 405
        assert allow_header(plain.headers["allow"]) == {"GET", "PATCH", "DELETE"}
        preflight = client.options(
            "/users/me",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "PATCH",
            },
        )
        assert preflight.status_code == 200
