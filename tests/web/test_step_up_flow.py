"""Step-up (M11) end to end, driven the way a third-party app does it: Authlib's
OAuth2Client with PKCE against a real uvicorn over TLS (SQLite and PostgreSQL),
a browser (httpx) on the hosted pages, codes pyotp computes.

Ada is an administrator under the rule that administrators need an app: her
first sign-in sets the app up, which proves nothing beyond the password, so the
app's ID token says acr pwd. The app then asks for `acr_values=
urn:userservice:acr:mfa` and `max_age` (OIDC Core §3.1.2.1): Ada signs in again,
password then code, and the ID token, checked by the library against our JWKS,
says acr mfa, amr pwd otp mfa and a new auth_time (required with max_age, OIDC
Core §2), which the access token repeats. Once her login is older than a later
request's max_age she signs in once more (a recovery code this time). Bob, who
has no factor, gets `unmet_authentication_requirements` at the app's callback
(OpenID Connect Core Unmet Authentication Requirements 1.0 §2)."""

from __future__ import annotations

import secrets
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
from authlib.oidc.core import CodeIDToken
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.accounts import PASSWORD, make_admin, register
from tests.support.factors import codes_on, now_code, secret_on, verified
from tests.support.oauth_flow import REDIRECT, add_app, hidden
from tests.support.server import trusted_server
from userservice.app import create_app
from userservice.services.assurance import ACR_MFA, ACR_PASSWORD
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"
BOB = "bob@example.com"
VERIFIER = "s" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
SECOND_FACTOR = "/login/second-factor"


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """Ada (an administrator under the rule, with a proven address), Bob (no
    factor) and a public third-party app, then the service over TLS."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        make_admin(app, ADA)
        verified(app, ADA)
        register(client, BOB, display_name="Bob")
        add_app(client)
        wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)
    with trusted_server(settings, tmp_path) as served:
        yield served


def _relying_party(ca: ssl.SSLContext) -> OAuth2Client:
    return OAuth2Client(
        "photo-app",
        None,
        scope="openid profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        verify=ca,
    )


def _password(browser: httpx.Client, login_location: str, email: str) -> httpx.Response:
    form = browser.get(login_location)
    assert form.status_code == 200 and 'name="password"' in form.text, form.text
    return browser.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": hidden(form.text, "next"),
        },
    )


def _code_step(browser: httpx.Client, code: str) -> str:
    page = browser.get(SECOND_FACTOR)
    assert page.status_code == 200, page.text
    done = browser.post(
        SECOND_FACTOR, data={"code": code, "csrf_token": hidden(page.text, "csrf_token")}
    )
    assert done.status_code == 303, done.text
    location: str = done.headers["location"]
    return location


def _to_callback(browser: httpx.Client, back_to: str) -> str:
    """Back at /oauth/authorize after a login: consent when asked, then the
    redirect to the app's callback."""
    response = browser.get(back_to)
    if response.status_code == 200:
        response = browser.post(
            back_to,
            data={"csrf_token": hidden(response.text, "csrf_token"), "decision": "allow"},
        )
    assert response.status_code in (302, 303), response.text
    location: str = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return location


def _request(rp: OAuth2Client, base: str, **extra: str) -> tuple[str, str, str]:
    """The app's authorization URL with PKCE and a fresh nonce (OIDC Core §3.1.2.1:
    a nonce is never reused); (url, state, nonce)."""
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=VERIFIER, nonce=nonce, **extra
    )
    return url, state, nonce


def _forced_login(browser: httpx.Client, url: str) -> str:
    """The authorization request answers with a login that asks for the password
    even though a session exists; the login page's address."""
    first = browser.get(url)
    assert first.status_code == 303, first.headers.get("location")
    location: str = first.headers["location"]
    assert location.startswith("/login?") and "force=1" in location, location
    return location


def _tokens(
    rp: OAuth2Client, base: str, callback: str, ca: ssl.SSLContext, issuer: str, **params: Any
) -> tuple[dict[str, Any], CodeIDToken, dict[str, Any]]:
    """What the app does with the callback: the token request, then the ID token
    checked against our JWKS (signature, iss, aud, exp, iat, nonce, at_hash, and
    auth_time's presence when max_age was asked); (tokens, ID token, access
    token's claims)."""
    token: dict[str, Any] = rp.fetch_token(
        f"{base}/oauth/token", authorization_response=callback, code_verifier=VERIFIER
    )
    with httpx.Client(base_url=base, verify=ca) as api:
        jwks = KeySet.import_key_set(api.get("/oauth/jwks").json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": "photo-app"},
            "acr": {"essential": True},
        },
        params={"access_token": token["access_token"], **params},
    )
    claims.validate(leeway=60)
    access = jwt.decode(token["access_token"], jwks).claims
    return token, claims, access


def test_m11_the_app_asks_for_mfa_and_max_age_and_the_user_steps_up(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    base, ca = server
    rp = _relying_party(ca)
    with httpx.Client(base_url=base, verify=ca) as browser:
        # 1. A plain request: the password, then the app set up (a forced enrolment).
        url, state, nonce = _request(rp, base)
        to_login = browser.get(url)
        assert to_login.status_code == 303
        assert _password(browser, to_login.headers["location"], ADA).headers["location"] == (
            "/login/enrol"
        )
        start = browser.get("/login/enrol")
        setup = browser.post(
            "/login/enrol/start", data={"csrf_token": hidden(start.text, "csrf_token")}
        )
        assert setup.status_code == 200, setup.text
        secret = secret_on(setup.text)
        shown = browser.post(
            "/login/enrol",
            data={"code": now_code(secret), "csrf_token": hidden(setup.text, "csrf_token")},
        )
        assert shown.status_code == 200, shown.text
        recovery = codes_on(shown.text)
        assert len(recovery) == 10
        callback = _to_callback(browser, url)
        assert parse_qs(urlsplit(callback).query)["state"] == [state]
        _, first, _ = _tokens(rp, base, callback, ca, settings.issuer, nonce=nonce)
        assert first["acr"] == ACR_PASSWORD and first["amr"] == ["pwd"]

        # 2. The app wants a multi-factor login of at most ten minutes.
        url, state, nonce = _request(rp, base, acr_values=ACR_MFA, max_age="600")
        login = _forced_login(browser, url)
        typed_at = int(time.time())
        after_password = _password(browser, login, ADA)
        assert after_password.headers["location"] == SECOND_FACTOR
        # A later step than the enrolment's code, which is spent.
        callback = _to_callback(browser, _code_step(browser, now_code(secret, 1)))
        assert parse_qs(urlsplit(callback).query)["state"] == [state]
        _, stepped, access = _tokens(
            rp, base, callback, ca, settings.issuer, nonce=nonce, max_age="600"
        )
        assert stepped["acr"] == ACR_MFA and stepped["amr"] == ["pwd", "otp", "mfa"]
        assert stepped["sub"] == first["sub"]
        # When the password was typed, or a little later: a login right after the
        # enrolment ended every earlier session is stamped no earlier than that
        # revocation's mark, which can lie a second or two ahead of the clock.
        assert typed_at - 1 <= stepped["auth_time"] <= typed_at + 3
        assert stepped["auth_time"] >= first["auth_time"]
        assert access["acr"] == ACR_MFA and access["amr"] == stepped["amr"]
        assert access["auth_time"] == stepped["auth_time"]

        # 3. The same request again: the session meets it, no page at all.
        url, _, _ = _request(rp, base, acr_values=ACR_MFA, max_age="600", prompt="none")
        silent = browser.get(url)
        assert silent.status_code == 302 and "code=" in silent.headers["location"]

        # 4. Later, a shorter max_age than the login's age: signed in once more,
        # a recovery code for the second step.
        # Wait until the login is older than a second by its own auth_time (which
        # may lie ahead of the clock, see above).
        time.sleep(max(0.0, stepped["auth_time"] + 2.1 - time.time()))
        url, _, nonce = _request(rp, base, acr_values=ACR_MFA, max_age="1")
        login = _forced_login(browser, url)
        typed_at = int(time.time())
        assert _password(browser, login, ADA).headers["location"] == SECOND_FACTOR
        callback = _to_callback(browser, _code_step(browser, recovery[0]))
        _, again, _ = _tokens(rp, base, callback, ca, settings.issuer, nonce=nonce, max_age="1")
        assert again["acr"] == ACR_MFA and "mfa" in again["amr"]
        assert typed_at - 1 <= again["auth_time"] <= typed_at + 2


def test_m11_an_account_without_a_factor_is_told_unmet_at_the_callback(
    settings: Settings, server: tuple[str, ssl.SSLContext]
) -> None:
    base, ca = server
    rp = _relying_party(ca)
    url, state, _ = _request(rp, base, acr_values=ACR_MFA)
    with httpx.Client(base_url=base, verify=ca) as browser:
        to_login = browser.get(url)
        assert to_login.status_code == 303
        back_to = _password(browser, to_login.headers["location"], BOB)
        assert back_to.status_code == 303, back_to.text
        # Bob's password login cannot reach mfa: the app is told, and asking
        # again gives the same answer at once, never another login.
        for _ in range(2):
            answer = browser.get(back_to.headers["location"])
            assert answer.status_code == 302, answer.text
            callback = answer.headers["location"]
            assert callback.startswith(REDIRECT + "?")
            got = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
            assert got["error"] == "unmet_authentication_requirements", got
            # RFC 9207 §2: the app checks who answered, and its own state.
            assert got["iss"] == settings.issuer and got["state"] == state and "code" not in got
