"""A12: CORS only for configured origins, on the API; never on the pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from userservice.app import create_app
from userservice.settings import Settings

APP_ORIGIN = "https://app.example"


def _preflight(client: TestClient, path: str, origin: str) -> dict[str, str]:
    response = client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    return dict(response.headers)


@pytest.mark.parametrize(
    "path", ["/oauth/token", "/oauth/jwks", "/users/me", "/.well-known/openid-configuration"]
)
def test_configured_origin_may_call_the_api(
    make_settings: Callable[..., Settings], path: str
) -> None:
    app = create_app(make_settings(cors_origins=[APP_ORIGIN]))
    with TestClient(app, base_url="https://testserver") as client:
        allowed = _preflight(client, path, APP_ORIGIN)
        other = _preflight(client, path, "https://evil.example")
    assert allowed.get("access-control-allow-origin") == APP_ORIGIN
    assert "access-control-allow-origin" not in other


def test_no_cors_without_configuration(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    with TestClient(app, base_url="https://testserver") as client:
        assert "access-control-allow-origin" not in _preflight(client, "/oauth/token", APP_ORIGIN)


@pytest.mark.parametrize("path", ["/login", "/oauth/authorize", "/account", "/oauth/logout"])
def test_pages_never_answer_cors(make_settings: Callable[..., Settings], path: str) -> None:
    app = create_app(make_settings(cors_origins=[APP_ORIGIN]))
    with TestClient(app, base_url="https://testserver") as client:
        headers = _preflight(client, path, APP_ORIGIN)
        simple = client.get(path, headers={"Origin": APP_ORIGIN}, follow_redirects=False)
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-origin" not in simple.headers
