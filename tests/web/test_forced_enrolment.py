"""The administrators' policy on the hosted sign-in (M8, M6), in-process over HTTPS
on SQLite and PostgreSQL: with `mfa required for admins`, an administrator without
an authenticator app must set one up after the password and before any session
exists (the QR drawn locally, the first code computed by pyotp from the key the
page shows, ten recovery codes shown once); meanwhile the password grant answers
mfa_required (M4) and the half-login opens nothing. Opening the page makes no
key (its "Start" button's POST does), and the session the enrolment ends in says
pwd (M5): an app set up just now proves nothing beyond the password."""

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
from tests.support.oauth_clients import assert_oauth_error, jwt_claims, password_form
from tests.support.oauth_flow import add_app, obtain_code, redeem
from tests.support.pages import (
    SESSION,
    check_page_headers,
    csrf_token,
    session_opens,
    set_cookies,
    web_login,
)
from tests.support.wiring import engine_of
from userservice.db.models import BrowserSession, HalfLogin, TotpFactor, User
from userservice.security.secrets import digest
from userservice.services.assurance import ACR_PASSWORD, PASSWORD_ONLY, loaded_amr
from userservice.wiring import wired

ROOT = "root@example.com"
HALF = "__Host-half-login"
ENROL = "/login/enrol"
START = "/login/enrol/start"
NONCE = "n-enrol-0S6_WzA2Mj"


@pytest.fixture
def policy(app: FastAPI) -> None:
    make_admin(app, ROOT)
    verified(app, ROOT)
    wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)


def start_page(client: TestClient, next_path: str | None = None) -> httpx.Response:
    """The password, then the enrolment page as opened: the start button only."""
    extra = {"next": next_path} if next_path else {}
    response = web_login(client, ROOT, **extra)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == ENROL
    assert SESSION not in set_cookies(response) and HALF in set_cookies(response)
    page = client.get(ENROL, follow_redirects=False)
    assert page.status_code == 200, page.text
    assert f'action="{START}"' in page.text
    assert "<svg" not in page.text and 'id="totp-secret"' not in page.text
    return page


def start(client: TestClient, page: httpx.Response) -> httpx.Response:
    response: httpx.Response = client.post(
        START, data={"csrf_token": csrf_token(page.text)}, follow_redirects=False
    )
    return response


def enrol_page(client: TestClient, next_path: str | None = None) -> httpx.Response:
    """The setup with its key, after the start button."""
    page = start(client, start_page(client, next_path))
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
    # The start button is a form like the others (F4): no token, or another
    # site's origin, makes no new key.
    keys = pending_keys(app)
    assert client.post(START, data={}, follow_redirects=False).status_code == 403
    cross = client.post(
        START,
        data={"csrf_token": csrf_token(page.text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403 and pending_keys(app) == keys
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
    assert 'name="code"' not in page.text and f'action="{START}"' not in page.text
    # Nor by posting the start form directly: refused, and the sign-in is over.
    refused = client.post(START, data={"csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert refused.status_code == 403 and 'id="totp-secret"' not in refused.text
    assert client.get(ENROL, follow_redirects=False).headers["location"] == "/login?expired=1"
    assert SESSION not in client.cookies and sessions_of(app) == 0
    assert pending_keys(app) == []


def test_m8_opening_the_enrol_page_makes_no_key(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    """A GET changes nothing: the key is made by the start button's POST, so a
    reload or a prefetch neither makes keys nor replaces the one being set up."""
    page = start_page(client)
    assert client.get(ENROL, follow_redirects=False).status_code == 200
    assert pending_keys(app) == []
    setup = start(client, page)
    assert setup.status_code == 200 and "<svg" in setup.text
    secret = secret_on(setup.text)
    keys = pending_keys(app)
    assert len(keys) == 1
    again = client.get(ENROL, follow_redirects=False)
    assert again.status_code == 200 and 'id="totp-secret"' not in again.text
    assert pending_keys(app) == keys
    # The key shown before the reload is still the one to confirm.
    assert post_code(client, setup, now_code(secret)).status_code == 200


def test_m6_after_a_wrong_code_a_new_key_comes_from_a_post(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    page = enrol_page(client)
    refused = post_code(client, page, wrong_code(secret_on(page.text)))
    assert refused.status_code == 400
    assert f'<form method="post" action="{START}"' in refused.text
    renewed = start(client, refused)
    assert renewed.status_code == 200
    secret = secret_on(renewed.text)
    assert secret != secret_on(page.text)
    assert post_code(client, renewed, now_code(secret)).status_code == 200


def test_m5_m8_a_forced_enrolment_signs_in_with_the_password_alone(
    client: TestClient, app: FastAPI, policy: None
) -> None:
    """Whoever had only the password could have set the app up: the session, and
    the ID and access tokens a code flow from it gets, say pwd and acr pwd."""
    page = enrol_page(client)
    assert post_code(client, page, now_code(secret_on(page.text))).status_code == 200
    raw = client.cookies.get(SESSION)
    assert raw
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw))
        assert loaded_amr(conn.execute(query).scalar_one()) == PASSWORD_ONLY
    add_app(client)
    code, verifier = obtain_code(client, scope="openid", nonce=NONCE)
    tokens = redeem(client, code, verifier)
    assert tokens.status_code == 200, tokens.text
    for token in (tokens.json()["id_token"], tokens.json()["access_token"]):
        claims = jwt_claims(token)
        assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PASSWORD, claims
    # The next sign-in is a real two-step one: the password, then the app's code.
    client.cookies.clear()
    assert web_login(client, ROOT).headers["location"] == "/login/second-factor"


def pending_keys(app: FastAPI) -> list[str]:
    """The stored (sealed) keys of apps being set up, not yet confirmed."""
    with engine_of(app).connect() as conn:
        query = select(TotpFactor.secret).where(TotpFactor.confirmed_at.is_(None))
        return [str(secret) for secret in conn.scalars(query)]


def _admin_id(app: FastAPI) -> uuid.UUID:
    with engine_of(app).connect() as conn:
        return uuid.UUID(str(conn.scalar(select(User.id).where(User.email == ROOT))))
