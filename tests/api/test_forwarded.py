"""G6: X-Forwarded-* counts only from trusted proxies; it never moves the issuer."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from userservice.app import create_app
from userservice.settings import Settings

BAD_LOGIN = {"grant_type": "password", "username": "nobody@example.com", "password": "x" * 12}
FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "evil.example",
}
# A login through the proxy over HTTPS: over http the token endpoint refuses
# before any password is checked (C14).
FORWARDED_LOGIN = {**FORWARDED, "X-Forwarded-Proto": "https"}
# The peer the app sees: settings accept only IP addresses or networks as proxies.
PEER = ("10.0.0.5", 50000)


def _logged_ip(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture, **overrides: object
) -> str:
    caplog.clear()
    caplog.set_level(logging.INFO, logger="userservice.audit")
    app = create_app(make_settings(**overrides))
    with TestClient(app, base_url="https://testserver", client=PEER) as client:
        response = client.post("/oauth/token", data=BAD_LOGIN, headers=FORWARDED_LOGIN)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        metadata = client.get("/.well-known/oauth-authorization-server", headers=FORWARDED)
        assert metadata.json()["issuer"] == "https://testserver"
    line = next(r.getMessage() for r in caplog.records if "login.failed" in r.getMessage())
    return line.split(" ip=", 1)[1].split(" ", 1)[0]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    assert _logged_ip(make_settings, caplog) == PEER[0]


def test_forwarded_for_from_a_trusted_proxy_is_the_client_address(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    assert _logged_ip(make_settings, caplog, trusted_proxies=[PEER[0]]) == "203.0.113.9"


def test_throttling_keys_on_the_real_peer_not_on_a_spoofed_header(
    make_settings: Callable[..., Settings],
) -> None:
    """Rotating X-Forwarded-For must not escape the per-IP limit."""
    app = create_app(make_settings(login_limit_per_ip="3/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        statuses = [
            client.post(
                "/oauth/token",
                data={**BAD_LOGIN, "username": f"user{i}@example.com"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(5)
        ]
    assert statuses[:3] == [400, 400, 400]
    assert statuses[3:] == [429, 429]


def test_c14_a_trusted_proxy_reporting_http_gets_no_token(
    make_settings: Callable[..., Settings],
) -> None:
    """Behind a trusted proxy the scheme is the proxy's word: a client that reached it
    over http sent its credentials in clear, and gets an error, not a token."""
    app = create_app(make_settings(trusted_proxies=[PEER[0]]))
    with TestClient(app, base_url="https://testserver", client=PEER) as client:
        response = client.post("/oauth/token", data=BAD_LOGIN, headers=FORWARDED)
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"
