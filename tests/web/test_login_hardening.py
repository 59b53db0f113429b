"""Hosted pages under attack: headers and third-party assets (F6, A11), escaping
(F7), open redirects (A8), account enumeration (E3), throttling (E4) and garbage
input, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.pages import (
    EMAIL,
    SESSION,
    XSS,
    check_page_headers,
    csrf_token,
    set_cookies,
    web_login,
)
from userservice.app import create_app
from userservice.settings import Settings
from userservice.web.browser import login_url, safe_next


@pytest.mark.parametrize("path", ["/login", "/logout", "/account", "/login?next=/x"])
def test_security_headers_on_pages(client: TestClient, signed_in: str, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (200, 303)
    check_page_headers(response)


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
    # Each page view carries a fresh passkey challenge (M9), random, the same length.
    fresh = re.compile(r'"challenge": "[A-Za-z0-9_-]+"')
    shown_wrong = fresh.sub("", wrong.text.replace(EMAIL, "E"))
    assert shown_wrong == fresh.sub("", unknown.text.replace("bob@example.com", "E"))
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


def test_login_url_and_safe_next() -> None:
    assert login_url("/account") == "/login?next=%2Faccount"
    assert login_url("//evil.com") == "/login"
    url = login_url("/oauth/authorize?a=1&b=2", login_hint="x@y.z", force=True)
    assert url == "/login?next=%2Foauth%2Fauthorize%3Fa%3D1%26b%3D2&login_hint=x%40y.z&force=1"
    assert safe_next("/oauth/authorize?x=https://evil.com") == "/oauth/authorize?x=https://evil.com"
    for bad in ("", None, "/" + "a" * 5000, "/a\x00b", "/a\x7fb", "/a\\b", "https:/x"):
        assert safe_next(bad) is None
