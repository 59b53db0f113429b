"""The second step of the hosted sign-in (M6) in-process over HTTPS, on SQLite and
PostgreSQL: after a correct password an account with an authenticator app gets a
half-login cookie and nothing else; the code from pyotp (or a recovery code,
once) finishes the login with amr pwd otp mfa (M5); wrong, replayed, late and
throttled codes; the half-login opens no page, route or authorization."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tests.support.accounts import register
from tests.support.factors import now_code, verified, wrong_code
from tests.support.journeys import mails
from tests.support.oauth_flow import add_app, authorize_url, hidden, login_via
from tests.support.pages import (
    EMAIL,
    SESSION,
    attributes,
    check_page_headers,
    csrf_token,
    session_opens,
    set_cookies,
    web_login,
)
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import BrowserSession, HalfLogin, User
from userservice.security.secrets import digest
from userservice.services.half_logins import MAX_CODE_ATTEMPTS
from userservice.settings import Settings
from userservice.wiring import wired

HALF = "__Host-half-login"
DEVICE = "__Host-device"
PAGE = "/login/second-factor"
IP = "192.0.2.7"


def enrolled(app: FastAPI, user_id: str) -> tuple[str, list[str]]:
    """Ada's app confirmed with the previous step's code, so the current one is
    still hers to use once (M1); (secret, recovery codes)."""
    verified(app, EMAIL)
    factors = wired(app).factors
    uid = uuid.UUID(user_id)
    secret = factors.start_totp(uid, ip=IP).secret
    codes = factors.confirm_totp(uid, now_code(secret, -1), ip=IP, locale="en")
    return secret, codes


@pytest.fixture
def secret_and_codes(app: FastAPI, user: dict[str, Any]) -> tuple[str, list[str]]:
    return enrolled(app, user["id"])


@pytest.fixture
def secret(secret_and_codes: tuple[str, list[str]]) -> str:
    return secret_and_codes[0]


def half_login(client: TestClient, **extra: str) -> httpx.Response:
    response = web_login(client, **extra)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == PAGE
    return response


def send_code(client: TestClient, code: str, **headers: str) -> httpx.Response:
    page = client.get(PAGE, follow_redirects=False)
    assert page.status_code == 200, page.text
    response: httpx.Response = client.post(
        PAGE,
        data={"code": code, "csrf_token": csrf_token(page.text)},
        headers=headers,
        follow_redirects=False,
    )
    return response


def stored_amr(app: FastAPI, raw_id: str) -> str | None:
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw_id))
        amr: str | None = conn.execute(query).scalar_one()
    return amr


def half_logins_left(app: FastAPI) -> int:
    with engine_of(app).connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(HalfLogin)).scalar_one()
    return count


def test_m6_the_password_gives_a_strict_half_login_cookie_and_no_session(
    client: TestClient, secret: str
) -> None:
    response = half_login(client)
    cookies = set_cookies(response)
    assert SESSION not in cookies and DEVICE not in cookies  # S12: after the whole login
    attrs = attributes(cookies[HALF])
    assert {"secure", "httponly", "path"} <= attrs.keys()
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "strict"
    assert "max-age" not in attrs and "expires" not in attrs and "domain" not in attrs
    raw = cookies[HALF].split(";", 1)[0].split("=", 1)[1]
    assert len(raw) == 43  # 256 bits
    page = client.get(PAGE)
    check_page_headers(page)
    main = page.text.split("<main", 1)[1].split("</main>", 1)[0]
    # ONE field: the code; beside it only the two forms' CSRF tokens.
    assert main.count("<input") == 3 and main.count('type="hidden"') == 2
    assert 'name="code"' in page.text and 'autocomplete="one-time-code"' in page.text
    assert '<label for="code">' in page.text and "recovery codes" in page.text
    assert '<html lang="en">' in page.text


def test_m6_a_wrong_password_answers_as_before(client: TestClient, secret: str) -> None:
    # M4, E3: the factor changes nothing before the password is right.
    response = web_login(client, password="not the password")
    assert response.status_code == 200
    assert "Incorrect email or password." in response.text
    assert HALF not in set_cookies(response)


def test_m5_m6_the_code_finishes_the_login(client: TestClient, app: FastAPI, secret: str) -> None:
    half_login(client, next="/account")
    held = client.cookies.get(HALF)
    assert held
    response = send_code(client, now_code(secret))
    assert response.status_code == 303  # A7
    assert response.headers["location"] == "/account"
    cookies = set_cookies(response)
    assert attributes(cookies[SESSION])["samesite"].lower() == "lax"
    assert DEVICE in cookies
    assert cookies[HALF].split(";", 1)[0] in (f"{HALF}=", f'{HALF}=""')  # deleted
    raw = client.cookies.get(SESSION)
    assert raw and session_opens(app, raw)
    assert stored_amr(app, raw) == "pwd otp mfa"
    assert half_logins_left(app) == 0
    # The spent half-login opens nothing again.
    client.cookies.set(HALF, held, domain="testserver.local")
    again = client.get(PAGE, follow_redirects=False)
    assert again.headers["location"] == "/login?expired=1"


def test_m6_the_session_keeps_when_the_password_was_checked(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    half_login(client)
    with engine_of(app).begin() as conn:
        # As if the password was typed 100 s ago (the revocation of the app's
        # setup moved back too, or it would end this half-login).
        conn.execute(update(User).values(tokens_valid_after=0))
        conn.execute(update(HalfLogin).values(auth_time=HalfLogin.auth_time - 100))
        checked = conn.execute(select(HalfLogin.auth_time)).scalar_one()
    send_code(client, now_code(secret))
    raw = client.cookies.get(SESSION)
    assert raw
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.auth_time).where(BrowserSession.id_digest == digest(raw))
        assert conn.execute(query).scalar_one() == checked


def test_m6_a_half_login_opens_no_page_or_route(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    add_app(client)
    half_login(client)
    assert HALF in client.cookies
    assert SESSION not in client.cookies
    account = client.get("/account", follow_redirects=False)
    assert account.status_code == 303 and account.headers["location"].startswith("/login")
    url = authorize_url(scope="openid profile")
    authorize = client.get(url, follow_redirects=False)
    assert authorize.status_code in (302, 303)
    assert authorize.headers["location"].startswith("/login?next=")  # no consent page
    logout = client.get("/logout", follow_redirects=False)
    assert logout.headers["location"] == "/login"
    login = client.get("/login", follow_redirects=False)
    assert login.status_code == 200 and 'name="password"' in login.text
    end = client.get("/oauth/logout", follow_redirects=False)
    assert "You are not signed in here." in end.text
    assert client.get("/users/me").status_code == 401


def test_m6_five_wrong_codes_end_the_half_login(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    half_login(client, next="/account")
    for _ in range(MAX_CODE_ATTEMPTS - 1):
        refused = send_code(client, wrong_code(secret))
        assert refused.status_code == 400
        assert 'id="form-error"' in refused.text and 'aria-invalid="true"' in refused.text
        assert SESSION not in set_cookies(refused)
    last = send_code(client, wrong_code(secret))
    assert last.status_code == 303
    assert last.headers["location"] == "/login?next=%2Faccount&too_many_codes=1"
    assert half_logins_left(app) == 0
    notice = client.get(last.headers["location"])
    assert "Too many wrong codes" in notice.text
    # Gone: the right code no longer helps, the password is due again.
    gone = client.get(PAGE, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/login?expired=1"
    assert SESSION not in client.cookies


def test_m1_codes_are_throttled_per_account(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(second_factor_limit="2/5minutes"))
    with TestClient(app, base_url="https://testserver") as client:
        secret, _codes = enrolled(app, register(client, EMAIL)["id"])
        half_login(client)
        for _ in range(2):
            assert send_code(client, wrong_code(secret)).status_code == 400
        throttled = send_code(client, now_code(secret))
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert "Too many wrong codes" in throttled.text
        assert SESSION not in client.cookies
        # M6: throttled guesses are not the half-login's: it is still there.
        assert client.get(PAGE, follow_redirects=False).status_code == 200


def test_m1_a_used_code_is_refused(client: TestClient, app: FastAPI, secret: str) -> None:
    code = now_code(secret)
    half_login(client)
    assert send_code(client, code).status_code == 303
    client.cookies.clear()
    half_login(client)
    replayed = send_code(client, code)
    assert replayed.status_code == 400
    assert "not correct, or it was used already" in replayed.text


def test_m2_a_recovery_code_works_once_and_is_mailed(
    client: TestClient, app: FastAPI, secret_and_codes: tuple[str, list[str]]
) -> None:
    code = secret_and_codes[1][0]
    half_login(client)
    # Typed loosely: upper case, spaces for dashes.
    used = send_code(client, " " + code.upper().replace("-", " ") + " ")
    assert used.status_code == 303
    raw = client.cookies.get(SESSION)
    assert raw and stored_amr(app, raw) == "pwd otp mfa"
    notice = mails(app, to=EMAIL, kind="recovery_code_used")
    assert len(notice) == 1
    client.cookies.clear()
    half_login(client)
    assert send_code(client, code).status_code == 400


def test_m6_an_expired_half_login_sends_back_to_login(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    half_login(client)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with engine_of(app).begin() as conn:
        conn.execute(update(HalfLogin).values(expires_at=past))
    page = client.get(PAGE, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?expired=1"
    assert HALF in set_cookies(page)  # cleared
    token = csrf_token(client.get("/login").text)
    late = client.post(
        PAGE, data={"code": now_code(secret), "csrf_token": token}, follow_redirects=False
    )
    assert late.status_code == 303 and late.headers["location"] == "/login?expired=1"
    assert SESSION not in client.cookies
    assert "took too long" in client.get("/login?expired=1").text


def test_m6_cancel_ends_the_half_login(client: TestClient, app: FastAPI, secret: str) -> None:
    half_login(client)
    token = csrf_token(client.get(PAGE).text)
    done = client.post(PAGE + "/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert half_logins_left(app) == 0


def test_f4_the_code_form_needs_its_token_and_our_origin(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    half_login(client)
    missing = client.post(PAGE, data={"code": now_code(secret)}, follow_redirects=False)
    assert missing.status_code == 403
    foreign = send_code(client, now_code(secret), Origin="https://evil.example")
    assert foreign.status_code == 403
    cross = send_code(client, now_code(secret), **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    token = csrf_token(client.get(PAGE).text)
    cancel = client.post(
        PAGE + "/cancel",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cancel.status_code == 403
    assert half_logins_left(app) == 1
    assert SESSION not in client.cookies
    assert send_code(client, now_code(secret)).status_code == 303


def test_f2_the_login_ends_the_session_held_before(
    client: TestClient, app: FastAPI, user: dict[str, Any], secret: str
) -> None:
    half_login(client)
    earlier = wired(app).sessions.start(uuid.UUID(user["id"]), int(time.time()))
    client.cookies.set(SESSION, earlier, domain="testserver.local")
    assert send_code(client, now_code(secret)).status_code == 303
    fresh = client.cookies.get(SESSION)
    assert fresh and fresh != earlier
    assert not session_opens(app, earlier)


def test_m6_the_authorize_request_comes_back_after_both_steps(
    client: TestClient, app: FastAPI, secret: str
) -> None:
    add_app(client)
    url = authorize_url(scope="openid profile")
    to_login = client.get(url, follow_redirects=False)
    password = login_via(client, to_login.headers["location"])
    assert password.status_code == 303 and password.headers["location"] == PAGE
    done = send_code(client, now_code(secret))
    assert done.status_code == 303 and done.headers["location"] == url
    consent = client.get(url, follow_redirects=False)
    assert consent.status_code == 200 and "Allow" in consent.text
    assert hidden(consent.text, "csrf_token")
