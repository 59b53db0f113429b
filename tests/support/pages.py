"""Helpers for the hosted-page tests: drive the login form as a browser would."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import PASSWORD
from tests.support.wiring import engine_of
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest

EMAIL = "ada@example.com"
SESSION = "__Host-session"
CSRF = "__Host-csrf"
XSS = '"><script>alert(1)</script>'


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def hidden_token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


def submit(
    client: TestClient, page: str, action: str | None = None, **fields: str
) -> httpx.Response:
    """GET the form at `page`, POST it (with its CSRF token) to `action`."""
    html = client.get(page).text
    form = {"csrf_token": csrf_token(html), **fields}
    response: httpx.Response = client.post(
        action or page.split("?")[0], data=form, follow_redirects=False
    )
    return response


def web_login(
    client: TestClient, email: str = EMAIL, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    form = {"email": email, "password": password, "csrf_token": csrf_token(page.text), **extra}
    response: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    return response


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Raw Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    pairs = [p.partition("=") for p in parts]
    return {name.lower(): value for name, _, value in pairs}


def session_opens(app: FastAPI, raw_id: str) -> bool:
    """Whether a browser holding only this session id gets the account page."""
    browser = TestClient(app, base_url="https://testserver")
    browser.cookies.set(SESSION, raw_id, domain="testserver.local")
    return browser.get("/account", follow_redirects=False).status_code == 200


def move_session(app: FastAPI, raw_id: str, **values: dt.datetime) -> None:
    engine = engine_of(app)
    with engine.begin() as conn:
        conn.execute(
            update(BrowserSession)
            .where(BrowserSession.id_digest == digest(raw_id))
            .values(**values)
        )


def last_seen(app: FastAPI, raw_id: str) -> dt.datetime:
    engine = engine_of(app)
    with engine.connect() as conn:
        value = conn.execute(
            BrowserSession.__table__.select().where(BrowserSession.id_digest == digest(raw_id))
        ).one()
    seen: dt.datetime = value.last_seen_at
    return seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)


def check_page_headers(response: httpx.Response) -> None:
    headers = response.headers
    hsts = re.search(r"max-age=(\d+)", headers["strict-transport-security"])
    assert hsts and int(hsts.group(1)) >= 31536000
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    # M9: the one local WebAuthn script; no inline script, no eval.
    assert "style-src 'self'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "form-action" not in csp
    if response.status_code != 303:
        assert headers["content-type"] == "text/html; charset=utf-8"
