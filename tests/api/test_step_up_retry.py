"""M12 end to end, the RFC 9470 round trip as a first-party client runs it against
a real uvicorn over TLS (SQLite and PostgreSQL): its token is too old, or from the
password alone on an account with an authenticator app; the sensitive call answers
401 with an RFC 9470 §3 challenge; the client reads acr_values and max_age from it
(RFC 9110 §11.6.1), sends the user through the authorization code flow with them
(Authlib's OAuth2Client, PKCE; OIDC Core §3.1.2.1), the browser signs in again
(password, then a code pyotp computes, M6), and the retry with the new token
succeeds. The new token says what the challenge asked for (amr, acr, auth_time).
The last test makes no token by hand: a password-only browser session gets a real
pwd token, and the challenge's acr_values make that browser sign in again (M11)."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.accounts import PASSWORD, register
from tests.support.factors import now_code, verified
from tests.support.oauth_clients import jwt_claims
from tests.support.oauth_flow import APP_SCOPE, REDIRECT, add_app, hidden
from tests.support.server import trusted_server
from tests.support.step_up_api import bearer_challenge
from userservice.app import create_app
from userservice.services.access_tokens import Grant
from userservice.services.assurance import (
    ACR_MFA,
    ACR_PASSWORD,
    ONE_TIME_CODE,
    PASSWORD_ONLY,
    with_second_factor,
)
from userservice.settings import Settings
from userservice.web.browser import SESSION_COOKIE
from userservice.wiring import wired

ADA = "ada@example.com"
CLIENT_ID = "account-frontend"
EXPORT = "/users/me/export"


def _account(settings: Settings, *, factor: bool) -> tuple[str | None, dict[str, Any]]:
    """Ada (proven), with an authenticator app when `factor`, and the first-party
    frontend allowed the code flow, on the database the server will use; her app's
    key, and what a token of hers needs (id, revocation mark)."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        user_id = uuid.UUID(register(client, ADA)["id"])
        verified(app, ADA)
        add_app(client, CLIENT_ID, first_party=True, name="Account Frontend")
        secret = None
        if factor:
            factors = wired(app).factors
            secret = factors.start_totp(user_id, ip=None).secret
            factors.confirm_totp(user_id, now_code(secret, -1), ip=None, locale="en")
    return secret, {"settings": settings, "user_id": user_id}


def _held_token(account: dict[str, Any], *, age: int, amr: tuple[str, ...]) -> str:
    """The access token the frontend holds: signed by the service's own key (shared
    by every replica through the database), for a login `age` seconds ago by `amr`.
    A password-only token of an account with an app is what a login before a forced
    enrolment leaves (M8, M13)."""
    app = create_app(account["settings"])
    with TestClient(app, base_url="https://testserver"):
        svc = wired(app)
        user = svc.accounts.get(account["user_id"])
        grant = Grant(auth_time=int(time.time()) - age, amr=amr)
        return svc.tokens.signer.for_user(
            user.id, user.tokens_valid_after, CLIENT_ID, APP_SCOPE, grant
        )


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    with trusted_server(settings, tmp_path) as served:
        yield served


def _sign_in_again(browser: httpx.Client, url: str, secret: str | None) -> str:
    """The user's part: password, and the app's code when the account has one (M6);
    a first-party client asks no consent. Where the browser is sent back to."""
    first = browser.get(url)
    assert first.status_code == 303 and first.headers["location"].startswith("/login?"), (
        first.status_code,
        first.text,
    )
    form = browser.get(first.headers["location"])
    password = browser.post(
        "/login",
        data={
            "email": ADA,
            "password": PASSWORD,
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": hidden(form.text, "next"),
        },
    )
    assert password.status_code == 303, password.text
    back_to = password.headers["location"]
    if secret is not None:
        assert back_to == "/login/second-factor"
        step = browser.get(back_to)
        done = browser.post(
            back_to,
            data={"code": now_code(secret), "csrf_token": hidden(step.text, "csrf_token")},
        )
        assert done.status_code == 303, done.text
        back_to = done.headers["location"]
    # The request, kept; without max_age, which the login just met (no loop).
    assert urlsplit(back_to).path == "/oauth/authorize"
    sent = {k: v for k, v in parse_qs(urlsplit(url).query).items() if k != "max_age"}
    assert parse_qs(urlsplit(back_to).query) == sent
    decision = browser.get(back_to)
    assert decision.status_code in (302, 303), decision.text
    location: str = decision.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return location


def _frontend(ca: ssl.SSLContext) -> OAuth2Client:
    return OAuth2Client(
        CLIENT_ID,
        None,
        scope=APP_SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        verify=ca,
    )


def _round_trip(
    server: tuple[str, ssl.SSLContext],
    held: str,
    secret: str | None,
    *,
    acr: str | None,
    browser: httpx.Client | None = None,
) -> dict[str, Any]:
    """The client's side of RFC 9470: call, read the challenge, get a new token with
    what it asks, retry. The new access token's claims."""
    base, ca = server
    with httpx.Client(base_url=base, verify=ca) as api:
        refused = api.get(EXPORT, headers={"Authorization": f"Bearer {held}"})
        assert refused.status_code == 401, refused.text
        challenge = bearer_challenge(refused.headers["www-authenticate"])
        assert challenge["error"] == "insufficient_user_authentication"
        assert challenge.get("acr_values") == acr
        assert challenge["max_age"] == "300"
        jwks = KeySet.import_key_set(api.get("/oauth/jwks").json())
    # RFC 9470 §5: the client passes the challenge's parameters on, as they came.
    asked = {key: challenge[key] for key in ("acr_values", "max_age") if key in challenge}
    frontend = _frontend(ca)
    verifier = "r" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
    url, _state = frontend.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=verifier, nonce="n-retry-0S6_WzA2Mj", **asked
    )
    started = int(time.time())
    if browser is None:
        with httpx.Client(base_url=base, verify=ca) as fresh:
            back = _sign_in_again(fresh, url, secret)
    else:
        back = _sign_in_again(browser, url, secret)
    token = frontend.fetch_token(
        f"{base}/oauth/token", authorization_response=back, code_verifier=verifier
    )
    retried = frontend.get(f"{base}{EXPORT}")  # Authlib sends the new token itself
    assert retried.status_code == 200, retried.text
    assert ADA in retried.text  # her own data
    frontend.close()
    claims: dict[str, Any] = jwt.decode(token["access_token"], jwks).claims
    assert started - 1 <= claims["auth_time"] <= int(time.time()) + 1
    return claims


def test_m12_an_old_multi_factor_token_steps_up_through_password_and_code(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    secret, account = _account(settings, factor=True)
    held = _held_token(account, age=301, amr=with_second_factor(ONE_TIME_CODE))
    claims = _round_trip(server, held, secret, acr=ACR_MFA)
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]


def test_m12_a_password_only_token_of_an_account_with_an_app_steps_up(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    secret, account = _account(settings, factor=True)
    held = _held_token(account, age=0, amr=PASSWORD_ONLY)
    claims = _round_trip(server, held, secret, acr=ACR_MFA)
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]


def test_m12_an_old_token_of_an_account_without_a_factor_needs_a_new_login_only(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    secret, account = _account(settings, factor=False)
    held = _held_token(account, age=3_600, amr=PASSWORD_ONLY)
    claims = _round_trip(server, held, secret, acr=None)
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]


def test_m12_m11_a_password_session_s_real_token_steps_up_in_the_same_browser(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    """No token made by hand: the browser holds the password-only session a login
    before a forced enrolment leaves (M13), so the frontend's code flow really issues
    a pwd token for an account with an app. The challenge's acr_values then make the
    authorization endpoint ask that same browser for the password and the code
    again (M11) instead of reusing its session."""
    base, ca = server
    secret, account = _account(settings, factor=True)
    time.sleep(1.05)  # the session starts after enrolment ended every earlier one
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver"):
        raw = wired(app).sessions.start(account["user_id"], int(time.time()), amr=PASSWORD_ONLY)
    with httpx.Client(base_url=base, verify=ca) as browser:
        browser.cookies.set(SESSION_COOKIE, raw, domain="127.0.0.1", path="/")
        frontend = _frontend(ca)
        verifier = "p" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
        url, _ = frontend.create_authorization_url(
            f"{base}/oauth/authorize", code_verifier=verifier, nonce="n-pwd-0S6_WzA2Mj"
        )
        silent = browser.get(url)  # the session suffices: no login page
        assert silent.status_code in (302, 303), silent.text
        held = frontend.fetch_token(
            f"{base}/oauth/token",
            authorization_response=silent.headers["location"],
            code_verifier=verifier,
        )["access_token"]
        frontend.close()
        assert jwt_claims(held)["amr"] == ["pwd"]
        claims = _round_trip(server, held, secret, acr=ACR_MFA, browser=browser)
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]
