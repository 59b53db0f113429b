"""Hosted login, logout and account pages over HTTPS: the browser session and its
cookie, CSRF and Origin checks, logout, timeouts (F1, F2, F4, F5, A7),
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from tests.support.pages import (
    CSRF,
    EMAIL,
    SESSION,
    attributes,
    csrf_token,
    last_seen,
    move_session,
    session_opens,
    set_cookies,
    web_login,
)
from userservice.services.accounts import ProfileChanges
from userservice.services.user_admin import AdminChanges, UserAdministration
from userservice.wiring import Services, wired


def test_account_needs_a_session(client: TestClient) -> None:
    response = client.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


def test_login_sets_host_session_cookie(client: TestClient, user: dict[str, Any]) -> None:
    response = web_login(client, next="/account")
    assert response.status_code == 303  # A7: never 307
    assert response.headers["location"] == "/account"
    cookie = set_cookies(response)[SESSION]
    attrs = attributes(cookie)
    # F1
    assert {"secure", "httponly", "path"} <= attrs.keys()
    assert attrs["path"] == "/"
    assert attrs["samesite"].lower() == "lax"
    assert "domain" not in attrs
    raw_id = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(raw_id) >= 43  # 256 bits, URL-safe base64
    page = client.get("/account")
    assert page.status_code == 200
    assert EMAIL in page.text and "Ada" in page.text


def test_csrf_cookie_attributes(client: TestClient) -> None:
    response = client.get("/login")
    attrs = attributes(set_cookies(response)[CSRF])
    assert {"secure", "httponly"} <= attrs.keys()
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "strict"
    assert "domain" not in attrs


def test_session_id_changes_at_every_login(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    # F2: logging in again (even over a live session) issues a new id; the old dies.
    again = web_login(client)
    assert again.status_code == 303
    fresh = client.cookies.get(SESSION)
    assert fresh and fresh != signed_in
    assert not session_opens(app, signed_in)
    assert session_opens(app, fresh)


def test_planted_session_id_is_not_adopted(client: TestClient, user: dict[str, Any]) -> None:
    planted = "A" * 43
    client.cookies.set(SESSION, planted, domain="testserver.local")
    response = web_login(client)
    assert response.status_code == 303
    assert set_cookies(response)[SESSION].split(";")[0] != f"{SESSION}={planted}"


def test_post_without_csrf_token_is_refused(client: TestClient, user: dict[str, Any]) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert SESSION not in set_cookies(response)
    wrong = client.post(
        "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.com"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://testserver.evil.com", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://testserver"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_post_from_a_foreign_origin_is_refused(
    client: TestClient, user: dict[str, Any], headers: dict[str, str]
) -> None:
    token = csrf_token(client.get("/login").text)
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form, headers=headers, follow_redirects=False)
    assert response.status_code == 403
    same = client.post(
        "/login",
        data=form,
        # What Chromium sends from our page under Referrer-Policy: no-referrer.
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert same.status_code == 303


def test_logout_by_get_only_asks(client: TestClient, signed_in: str) -> None:
    page = client.get("/logout")
    assert page.status_code == 200
    assert 'method="post"' in page.text and 'action="/logout"' in page.text
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_logout_without_csrf_is_refused(client: TestClient, signed_in: str) -> None:
    response = client.post("/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_logout_ends_the_session_on_the_server(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    token = csrf_token(client.get("/account").text)
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    cleared = attributes(set_cookies(response)[SESSION])
    assert cleared.get("max-age") == "0" and "secure" in cleared
    # F5: replaying the old cookie opens nothing.
    assert not session_opens(app, signed_in)


def test_idle_timeout(client: TestClient, app: FastAPI, signed_in: str) -> None:
    idle = wired(app).settings.session_idle_ttl_seconds
    now = dt.datetime.now(dt.UTC)
    move_session(app, signed_in, last_seen_at=now - dt.timedelta(seconds=idle - 120))
    assert client.get("/account", follow_redirects=False).status_code == 200
    # The read refreshed last_seen_at (it was more than a minute old).
    assert last_seen(app, signed_in) > now - dt.timedelta(seconds=30)
    move_session(app, signed_in, last_seen_at=now - dt.timedelta(seconds=idle + 5))
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert not session_opens(app, signed_in)


def test_absolute_timeout(client: TestClient, app: FastAPI, signed_in: str) -> None:
    now = dt.datetime.now(dt.UTC)
    # Active a second ago, but the session's whole life is over.
    move_session(
        app,
        signed_in,
        created_at=now - dt.timedelta(hours=13),
        last_seen_at=now - dt.timedelta(seconds=1),
        expires_at=now - dt.timedelta(hours=1),
    )
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_disable_and_password_change_end_sessions(
    client: TestClient, services: Services, user: dict[str, Any]
) -> None:
    accounts = services.accounts
    user_id = uuid.UUID(user["id"])
    assert web_login(client).status_code == 303
    accounts.update_profile(
        user_id, ProfileChanges(new_password="a much newer passphrase", current_password=PASSWORD)
    )
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert web_login(client, password="a much newer passphrase").status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 200
    UserAdministration(accounts.db).update(uuid.uuid4(), user_id, AdminChanges(is_active=False))
    assert client.get("/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://testserver"},
        {"Origin": "https://TestServer:443", "Sec-Fetch-Site": "same-origin"},
        {},
    ],
)
def test_post_from_our_own_origin_is_accepted(
    client: TestClient, user: dict[str, Any], headers: dict[str, str]
) -> None:
    token = csrf_token(client.get("/login").text)
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form, headers=headers, follow_redirects=False)
    assert response.status_code == 303
