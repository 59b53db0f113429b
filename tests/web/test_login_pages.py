"""Hosted login, logout and account pages over HTTPS (SECURITY.md F1-F7, A7, A8,
A11, E3, E4), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import PASSWORD, register
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.services.accounts import AdminChanges, ProfileChanges
from userservice.settings import Settings
from userservice.web.browser import login_url, safe_next

EMAIL = "ada@example.com"
SESSION = "__Host-session"
CSRF = "__Host-csrf"
XSS = '"><script>alert(1)</script>'


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


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


def move_session(app: FastAPI, raw_id: str, **values: dt.datetime) -> None:
    engine = app.state.services.sessions.db.engine
    with engine.begin() as conn:
        conn.execute(
            update(BrowserSession)
            .where(BrowserSession.id_digest == digest(raw_id))
            .values(**values)
        )


def last_seen(app: FastAPI, raw_id: str) -> dt.datetime:
    engine = app.state.services.sessions.db.engine
    with engine.connect() as conn:
        value = conn.execute(
            BrowserSession.__table__.select().where(BrowserSession.id_digest == digest(raw_id))
        ).one()
    seen: dt.datetime = value.last_seen_at
    return seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)


@pytest.fixture
def signed_in(client: TestClient, user: dict[str, Any]) -> str:
    response = web_login(client)
    assert response.status_code == 303, response.text
    raw_id: str | None = client.cookies.get(SESSION)
    assert raw_id
    return raw_id


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
    assert app.state.services.sessions.current(signed_in) is None
    assert app.state.services.sessions.current(fresh) is not None


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
    replay = TestClient(app, base_url="https://testserver")
    replay.cookies.set(SESSION, signed_in, domain="testserver.local")
    assert replay.get("/account", follow_redirects=False).status_code == 303


def test_idle_timeout(client: TestClient, app: FastAPI, signed_in: str) -> None:
    idle = app.state.services.settings.session_idle_ttl_seconds
    now = dt.datetime.now(dt.UTC)
    move_session(app, signed_in, last_seen_at=now - dt.timedelta(seconds=idle - 120))
    assert client.get("/account", follow_redirects=False).status_code == 200
    # The read refreshed last_seen_at (it was more than a minute old).
    assert last_seen(app, signed_in) > now - dt.timedelta(seconds=30)
    move_session(app, signed_in, last_seen_at=now - dt.timedelta(seconds=idle + 5))
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert app.state.services.sessions.current(signed_in) is None


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
    client: TestClient, app: FastAPI, user: dict[str, Any]
) -> None:
    accounts = app.state.services.accounts
    user_id = uuid.UUID(user["id"])
    assert web_login(client).status_code == 303
    accounts.update_profile(
        user_id, ProfileChanges(new_password="a much newer passphrase", current_password=PASSWORD)
    )
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert web_login(client, password="a much newer passphrase").status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 200
    accounts.admin_update(uuid.uuid4(), user_id, AdminChanges(is_active=False))
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_end_all_for_user(client: TestClient, app: FastAPI, signed_in: str) -> None:
    sessions = app.state.services.sessions
    other = sessions.start(sessions.current(signed_in).user.id, 0)
    assert sessions.end_all_for_user(sessions.current(other).user.id) == 2
    assert sessions.current(signed_in) is None and sessions.current(other) is None


@pytest.mark.parametrize("path", ["/login", "/logout", "/account", "/login?next=/x"])
def test_security_headers_on_pages(client: TestClient, signed_in: str, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (200, 303)
    check_page_headers(response)


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
    assert "style-src 'self'" in csp and "script-src" not in csp
    assert "form-action" not in csp
    if response.status_code != 303:
        assert headers["content-type"] == "text/html; charset=utf-8"


def test_pages_load_nothing_from_third_parties(client: TestClient, signed_in: str) -> None:
    # A11: every URL in the markup is a path on our own origin.
    for path in ("/login?force=1", "/logout", "/account"):
        html = client.get(path).text
        assert "http:" not in html and "https:" not in html and "//" not in html, path
        for url in re.findall(r'(?:href|src|action)="([^"]*)"', html):
            assert url.startswith("/") and not url.startswith("//"), url
    css = client.get("/static/pages.css")
    assert css.status_code == 200 and "url(" not in css.text and "@import" not in css.text


def test_login_hint_and_next_are_escaped(client: TestClient) -> None:
    # F7
    response = client.get("/login", params={"login_hint": XSS, "next": "/cb" + XSS})
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert 'name="next" value="/cb&#34;&gt;&lt;script&gt;' in response.text


def test_next_is_followed_when_same_origin(client: TestClient, user: dict[str, Any]) -> None:
    target = "/oauth/authorize?client_id=abc&state=x%2Fy"
    response = web_login(client, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == target
    again = client.get("/login", params={"next": target}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == target
    forced = client.get("/login", params={"next": target, "force": "1"})
    assert forced.status_code == 200 and 'name="password"' in forced.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.com",
        "//evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "///evil.com",
        "javascript:alert(1)",
        "http:/evil.com",
        "/\t/evil.com",
        "/%0a/x\n",
        "evil.com",
        " /account",
    ],
)
def test_foreign_next_is_refused(client: TestClient, user: dict[str, Any], target: str) -> None:
    # A8: an open redirector after login would hand the session to a phishing page.
    page = client.get("/login", params={"next": target})
    assert 'name="next"' not in page.text
    response = web_login(client, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


def test_unknown_user_and_wrong_password_look_the_same(
    client: TestClient, user: dict[str, Any]
) -> None:
    # E3: same status, body and headers (the echoed email aside, same length here).
    token = csrf_token(client.get("/login").text)

    def attempt(email: str) -> httpx.Response:
        form = {"email": email, "password": "wrong password!", "csrf_token": token}
        response: httpx.Response = client.post("/login", data=form)
        return response

    wrong = attempt(EMAIL)
    unknown = attempt("bob@example.com")
    assert wrong.status_code == unknown.status_code == 200
    assert "Incorrect email or password." in wrong.text
    assert wrong.text.replace(EMAIL, "E") == unknown.text.replace("bob@example.com", "E")
    skip = {"x-request-id"}
    assert {k: v for k, v in wrong.headers.items() if k not in skip} == {
        k: v for k, v in unknown.headers.items() if k not in skip
    }
    assert SESSION not in set_cookies(wrong)


@pytest.fixture
def strict_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    app = create_app(make_settings(login_limit_per_account="2/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, EMAIL)
        yield client


def test_throttled_login_page(strict_client: TestClient) -> None:
    # E4
    for _ in range(2):
        assert web_login(strict_client, password="not the password").status_code == 200
    response = web_login(strict_client)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "text/html" in response.headers["content-type"]
    assert SESSION not in set_cookies(response)
    check_page_headers(response)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("", "application/x-www-form-urlencoded", 200),  # no fields at all
        ("email=a%40b.c", "application/x-www-form-urlencoded", 200),
        ("email=" + "a" * 60000 + "&password=x", "application/x-www-form-urlencoded", 200),
        ("password=" + "p" * 5000 + "&email=ada%40example.com", None, 200),
        ('{"email": "ada@example.com"}', "application/json", 403),
        ("email=x", "multipart/form-data; boundary=zz", 403),
        ("email=x", "text/plain", 403),
        ("email=a&email=b", "application/x-www-form-urlencoded", 400),
        ("email=%ff%fe", "application/x-www-form-urlencoded", 400),
        ("a=1&" * 40, "application/x-www-form-urlencoded", 400),
        ("x" * 200_000, "application/x-www-form-urlencoded", 413),
        ("x", "a" * 5000, 403),
    ],
)
def test_garbage_login_input_never_500(
    client: TestClient, user: dict[str, Any], body: str, content_type: str | None, status: int
) -> None:
    token = csrf_token(client.get("/login").text)
    if status != 413:
        body = f"csrf_token={token}&{body}" if body else f"csrf_token={token}"
    headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    response = client.post("/login", content=body.encode(), headers=headers)
    assert response.status_code == status, response.text
    assert SESSION not in set_cookies(response)


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


def test_login_url_and_safe_next() -> None:
    assert login_url("/account") == "/login?next=%2Faccount"
    assert login_url("//evil.com") == "/login"
    url = login_url("/oauth/authorize?a=1&b=2", login_hint="x@y.z", force=True)
    assert url == "/login?next=%2Foauth%2Fauthorize%3Fa%3D1%26b%3D2&login_hint=x%40y.z&force=1"
    assert safe_next("/oauth/authorize?x=https://evil.com") == "/oauth/authorize?x=https://evil.com"
    for bad in ("", None, "/" + "a" * 5000, "/a\x00b", "/a\x7fb", "/a\\b", "https:/x"):
        assert safe_next(bad) is None
