"""The administrators' policy on the hosted sign-in (M8, M6), in-process over HTTPS
on SQLite and PostgreSQL: with `mfa required for admins`, an administrator without
an authenticator app must set one up after the password and before any session
exists (the QR drawn locally, the first code computed by pyotp from the key the
page shows, ten recovery codes shown once); meanwhile the password grant answers
mfa_required (M4) and the half-login opens nothing."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.accounts import PASSWORD, make_admin, register
from tests.support.factors import CODE_SHAPE, codes_on, now_code, secret_on, verified, wrong_code
from tests.support.journeys import mails
from tests.support.oauth_clients import assert_oauth_error, password_form
from tests.support.pages import (
    SESSION,
    check_page_headers,
    csrf_token,
    session_opens,
    set_cookies,
    web_login,
)
from tests.support.wiring import engine_of
from userservice.db.models import BrowserSession, HalfLogin, User
from userservice.security.secrets import digest
from userservice.wiring import wired

ROOT = "root@example.com"
HALF = "__Host-half-login"
ENROL = "/login/enrol"


@pytest.fixture
def policy(app: FastAPI) -> None:
    make_admin(app, ROOT)
    verified(app, ROOT)
    wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)


def enrol_page(client: TestClient, next_path: str | None = None) -> httpx.Response:
    extra = {"next": next_path} if next_path else {}
    response = web_login(client, ROOT, **extra)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == ENROL
    assert SESSION not in set_cookies(response) and HALF in set_cookies(response)
    page = client.get(ENROL, follow_redirects=False)
    assert page.status_code == 200, page.text
    return page


def post_code(client: TestClient, page: httpx.Response, code: str) -> httpx.Response:
    response: httpx.Response = client.post(
        ENROL, data={"code": code, "csrf_token": csrf_token(page.text)}, follow_redirects=False
    )
    return response


def sessions_of(app: FastAPI) -> int:
    with engine_of(app).connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(BrowserSession)) or 0)


def test_m8_an_admin_without_an_app_enrols_before_any_session(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    page = enrol_page(client, next_path="/account")
    check_page_headers(page)  # no-store: the key stays out of every cache
    assert sessions_of(app) == 0
    assert "<svg" in page.text and "http" not in page.text.split("<svg", 1)[1][:200]
    assert 'autocomplete="one-time-code"' in page.text and '<label for="code">' in page.text
    # Meanwhile nothing is open to this browser.
    assert client.get("/account", follow_redirects=False).status_code == 303
    secret = secret_on(page.text)
    done = post_code(client, page, now_code(secret))
    assert done.status_code == 200, done.text
    check_page_headers(done)
    codes = codes_on(done.text)
    assert len(codes) == 10 and all(CODE_SHAPE.fullmatch(code) for code in codes)
    assert re.search(r'<a class="button" href="/account">', done.text)
    raw = client.cookies.get(SESSION)
    assert raw and session_opens(app, raw)
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw))
        assert conn.execute(query).scalar_one() == "pwd otp mfa"
        assert conn.scalar(select(func.count()).select_from(HalfLogin)) == 0
    assert wired(app).factors.summary(_admin_id(app)).totp
    assert len(mails(app, to=ROOT, kind="factor_added")) == 1
    # Shown once: the enrolment page is over for this browser.
    assert client.get(ENROL, follow_redirects=False).status_code == 303


def test_m8_next_time_the_admin_gives_the_code(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    page = enrol_page(client)
    secret = secret_on(page.text)
    assert post_code(client, page, now_code(secret)).status_code == 200
    client.cookies.clear()
    again = web_login(client, ROOT)
    assert again.headers["location"] == "/login/second-factor"


def test_m4_m8_the_password_grant_answers_mfa_required_until_and_after_enrolment(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    refused = client.post("/oauth/token", data=password_form(ROOT, PASSWORD))
    assert_oauth_error(refused, 400, "mfa_required")
    wrong = client.post("/oauth/token", data=password_form(ROOT, "not the password"))
    assert_oauth_error(wrong, 400, "invalid_grant")
    # Users who are not administrators are not touched by the policy.
    register(client, "bob@example.com")
    assert client.post("/oauth/token", data=password_form("bob@example.com")).status_code == 200
    assert web_login(client, "bob@example.com").headers["location"] == "/account"


def test_m6_a_wrong_first_code_keeps_the_half_login_and_shows_no_key_again(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    page = enrol_page(client)
    secret = secret_on(page.text)
    refused = post_code(client, page, wrong_code(secret))
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.text and 'id="totp-secret"' not in refused.text
    assert SESSION not in client.cookies
    assert post_code(client, refused, now_code(secret)).status_code == 200


def test_m6_the_enrol_page_needs_the_half_login_and_the_token(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    nobody = client.get(ENROL, follow_redirects=False)
    assert nobody.status_code == 303 and nobody.headers["location"] == "/login?expired=1"
    page = enrol_page(client)
    missing = client.post(ENROL, data={"code": "123456"}, follow_redirects=False)
    assert missing.status_code == 403
    foreign = client.post(
        ENROL,
        data={"code": "123456", "csrf_token": csrf_token(page.text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    # The code page is not a way around the setup.
    assert client.get("/login/second-factor", follow_redirects=False).headers["location"] == ENROL


def test_m3_m8_an_unverified_admin_cannot_enrol_nor_sign_in(
    client: TestClient, app: FastAPI
) -> None:
    make_admin(app, ROOT)
    wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)
    response = web_login(client, ROOT)
    assert response.headers["location"] == ENROL
    page = client.get(ENROL, follow_redirects=False)
    assert page.status_code == 403
    assert "Verify your email address first" in page.text
    assert 'name="code"' not in page.text and SESSION not in client.cookies
    assert sessions_of(app) == 0


def _admin_id(app: FastAPI) -> uuid.UUID:
    with engine_of(app).connect() as conn:
        return uuid.UUID(str(conn.scalar(select(User.id).where(User.email == ROOT))))
