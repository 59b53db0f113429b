"""A password reset neither signs in nor removes the second factors (M7), through
the hosted pages and through the API, in-process on SQLite and PostgreSQL: the
reset gives no session, the authenticator app and the recovery codes stay as
they were, and the new password alone gets only the half-login on the sign-in
page (M6) and `mfa_required` from the password grant (M4)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.factors import enable, verified
from tests.support.journeys import last_token
from tests.support.oauth_clients import assert_oauth_error, password_form
from tests.support.pages import EMAIL, SESSION, session_opens, set_cookies, submit, web_login
from userservice.services.factors import FactorSummary
from userservice.wiring import Services

NEW_PASSWORD = "a brand new passphrase"
HALF = "__Host-half-login"
SECOND_STEP = "/login/second-factor"


def reset_by_page(client: TestClient, app: FastAPI) -> httpx.Response:
    asked = submit(client, "/forgot-password", email=EMAIL)
    assert asked.status_code == 303, asked.text
    token = last_token(app, EMAIL, "reset_password")
    page = f"/reset-password?token={token}"
    done = submit(client, page, token=token, password=NEW_PASSWORD)
    # L4: the sign-in page says it worked; nobody is signed in by it.
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
    return done


def reset_by_api(client: TestClient, app: FastAPI) -> httpx.Response:
    asked = client.post("/users/password-reset", json={"email": EMAIL})
    assert asked.status_code == 202, asked.text
    token = last_token(app, EMAIL, "reset_password")
    done = client.post(
        "/users/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    return done


RESETS = {"page": reset_by_page, "api": reset_by_api}


@pytest.fixture(params=sorted(RESETS))
def reset(request: pytest.FixtureRequest) -> Any:
    return RESETS[request.param]


@pytest.fixture
def enrolled(
    app: FastAPI, client: TestClient, user: dict[str, Any], signed_in: str
) -> tuple[str, list[str]]:
    """Ada, her address proven (M3), turns the app on at her account page; the
    browser goes on in the new session that the change gives it (M3)."""
    verified(app, EMAIL)
    secret, codes, _code = enable(client)
    # The reset follows at once, usually within the second of the change's own
    # revocation: the new session, stamped with that mark, must still die (L3).
    return secret, codes


def summary_of(services: Services, user: dict[str, Any]) -> FactorSummary:
    return services.factors.summary(uuid.UUID(user["id"]))


def test_m7_a_reset_signs_nobody_in_and_keeps_the_factors(
    app: FastAPI,
    client: TestClient,
    services: Services,
    user: dict[str, Any],
    enrolled: tuple[str, list[str]],
    reset: Any,
) -> None:
    before = summary_of(services, user)
    assert before.enrolled and before.recovery_codes_left == 10
    session = client.cookies.get(SESSION)
    assert session and session_opens(app, session)

    done = reset(client, app)

    cookies = set_cookies(done)
    assert SESSION not in cookies and HALF not in cookies
    # L4: the session the browser had ended with the reset, and none replaced it.
    assert not session_opens(app, session)
    account = client.get("/account", follow_redirects=False)
    assert account.status_code == 303 and account.headers["location"].startswith("/login")
    # M7: the app and every unused recovery code are still the account's.
    after = summary_of(services, user)
    assert after.enrolled and after.totp
    assert after.totp_confirmed_at == before.totp_confirmed_at
    assert after.recovery_codes_left == before.recovery_codes_left == len(enrolled[1])


def test_m7_the_new_password_alone_gives_only_the_half_login(
    app: FastAPI,
    client: TestClient,
    services: Services,
    user: dict[str, Any],
    enrolled: tuple[str, list[str]],
    reset: Any,
) -> None:
    reset(client, app)
    client.cookies.clear()  # a browser that never signed in: the reset's reader

    # The old password is gone (E3's answer, no half-login) ...
    old = web_login(client)
    assert old.status_code == 200 and HALF not in set_cookies(old)
    # ... and the new one gets only the half-login (M6): a cookie for the code
    # step, no session, no account page.
    half = web_login(client, password=NEW_PASSWORD)
    assert half.status_code == 303 and half.headers["location"] == SECOND_STEP
    cookies = set_cookies(half)
    assert SESSION not in cookies and HALF in cookies
    assert SESSION not in client.cookies
    account = client.get("/account", follow_redirects=False)
    assert account.status_code == 303 and account.headers["location"].startswith("/login")

    # M4: the password grant with the new password answers mfa_required.
    grant = client.post("/oauth/token", data=password_form(EMAIL, NEW_PASSWORD))
    assert_oauth_error(grant, 400, "mfa_required")
    assert "access_token" not in grant.text

    # The kept factor still finishes the login: a recovery code from before the
    # reset is accepted once (M2), and only then is there a session.
    finished = submit(client, SECOND_STEP, code=enrolled[1][0])
    assert finished.status_code == 303, finished.text
    assert SESSION in set_cookies(finished)
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert summary_of(services, user).recovery_codes_left == len(enrolled[1]) - 1
