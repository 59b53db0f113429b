"""Sign out everywhere across worker processes (L23): `userservice serve` with two
workers over TLS, on SQLite and PostgreSQL. After one DELETE /users/me/sessions,
every fresh connection, whichever worker takes it, refuses the access token, the
refresh token and both browser sessions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.support.accounts import PASSWORD
from tests.support.serve_process import serve, trusting

EMAIL = "ada@example.com"
ATTEMPTS = 8


def _client(base: str, ca: Path) -> httpx.Client:
    return httpx.Client(base_url=base, verify=trusting(ca), timeout=20)


def _browser_session(base: str, ca: Path) -> dict[str, str]:
    """Sign in on the hosted login page; the browser's cookies."""
    with _client(base, ca) as browser:
        page = browser.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        form = {"email": EMAIL, "password": PASSWORD, "csrf_token": found.group(1)}
        signed_in = browser.post("/login", data=form)
        assert signed_in.status_code == 303, signed_in.text
        assert _account_status(base, ca, dict(browser.cookies)) == 200
        return dict(browser.cookies)


def _account_status(base: str, ca: Path, cookies: dict[str, str]) -> int:
    # A new client each time: a new connection, to either worker.
    with _client(base, ca) as fresh:
        for name, value in cookies.items():
            fresh.cookies.set(name, value, domain="127.0.0.1")
        return fresh.get("/account").status_code


def _fresh(base: str, ca: Path, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with _client(base, ca) as fresh:
        return fresh.request(method, path, **kwargs)


def test_sign_out_everywhere_holds_on_every_worker(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(data, None, "--workers", "2", env={"USERSERVICE_DATABASE_URL": db_url}) as served:
        base, ca = served.base, data / "tls" / "ca.crt"
        created = _fresh(base, ca, "POST", "/users", json={"email": EMAIL, "password": PASSWORD})
        assert created.status_code == 201, created.text
        browsers = [_browser_session(base, ca) for _ in range(2)]
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        tokens = _fresh(base, ca, "POST", "/oauth/token", data=form).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        for _ in range(ATTEMPTS):
            assert _fresh(base, ca, "GET", "/users/me", headers=bearer).status_code == 200
        ended = _fresh(base, ca, "DELETE", "/users/me/sessions", headers=bearer)
        assert ended.status_code == 204, ended.text
        for _ in range(ATTEMPTS):
            assert _fresh(base, ca, "GET", "/users/me", headers=bearer).status_code == 401
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refused = _fresh(base, ca, "POST", "/oauth/token", data=refresh)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        for cookies in browsers:
            for _ in range(ATTEMPTS // 2):
                assert _account_status(base, ca, cookies) == 303
