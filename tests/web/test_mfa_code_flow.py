"""The authorization code flow through both sign-in steps, driven the way a
third-party app does it: Authlib's OAuth2 client with PKCE against a real uvicorn
over TLS (SQLite and PostgreSQL); the browser gives the password, then a code
pyotp computes from the account's key (M6), consents, and goes back to the app.
The ID token, verified against our JWKS, says how: amr ["pwd","otp","mfa"]
(RFC 8176), acr urn:userservice:acr:mfa and the password's auth_time, also in
the access token, which keeps them after a refresh (M5)."""

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
from authlib.oidc.core import CodeIDToken
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.accounts import PASSWORD, register
from tests.support.factors import now_code, verified
from tests.support.oauth_flow import REDIRECT, add_app, hidden
from tests.support.server import trusted_server
from userservice.app import create_app
from userservice.services.assurance import ACR_MFA
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"
NONCE = "n-mfa-0S6_WzA2Mj"


@pytest.fixture
def ada_secret(settings: Settings) -> str:
    """Ada with a confirmed app (through the service, the previous step's code)
    and a public third-party app, on the database the server will use."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        user_id = uuid.UUID(register(client, ADA, display_name="Ada")["id"])
        verified(app, ADA)
        add_app(client)
        factors = wired(app).factors
        secret = factors.start_totp(user_id, ip=None).secret
        factors.confirm_totp(user_id, now_code(secret, -1), ip=None, locale="en")
    return secret


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    with trusted_server(settings, tmp_path) as served:
        yield served


def _browser_walks_both_steps(browser: httpx.Client, url: str, secret: str) -> tuple[str, int]:
    """Password, code, consent; (the redirect back to the app, when the password
    was sent)."""
    first = browser.get(url)
    assert first.status_code == 303 and first.headers["location"].startswith("/login?next=")
    form = browser.get(first.headers["location"])
    typed_at = int(time.time())
    password = browser.post(
        "/login",
        data={
            "email": ADA,
            "password": PASSWORD,
            "csrf_token": hidden(form.text, "csrf_token"),
            "next": hidden(form.text, "next"),
        },
    )
    assert password.status_code == 303 and password.headers["location"] == "/login/second-factor"
    assert "__Host-session" not in browser.cookies
    # M6: with the half-login alone the authorize request still wants a sign-in.
    assert browser.get(url).headers["location"].startswith("/login?next=")
    step = browser.get("/login/second-factor")
    done = browser.post(
        "/login/second-factor",
        data={"code": now_code(secret), "csrf_token": hidden(step.text, "csrf_token")},
    )
    assert done.status_code == 303, done.text
    back_to = done.headers["location"]
    assert back_to == url[url.index("/oauth/authorize") :]  # the request, kept
    consent = browser.get(back_to)
    assert consent.status_code == 200 and "Photo App" in consent.text, consent.text
    decision = browser.post(
        back_to,
        data={"csrf_token": hidden(consent.text, "csrf_token"), "decision": "allow"},
    )
    assert decision.status_code in (302, 303), decision.text
    return decision.headers["location"], typed_at


def test_m5_m6_code_flow_through_password_and_app_code(
    settings: Settings, ada_secret: str, server: tuple[str, ssl.SSLContext]
) -> None:
    base, ca = server
    app = OAuth2Client(
        "photo-app",
        None,
        scope="openid profile email offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        verify=ca,
    )
    verifier = "m" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
    url, state = app.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=verifier, nonce=NONCE
    )
    with httpx.Client(base_url=base, verify=ca) as browser:
        back, typed_at = _browser_walks_both_steps(browser, url, ada_secret)
    assert back.startswith(REDIRECT) and parse_qs(urlsplit(back).query)["state"] == [state]
    token = app.fetch_token(
        f"{base}/oauth/token", authorization_response=back, code_verifier=verifier
    )
    with httpx.Client(base_url=base, verify=ca) as api:
        jwks = KeySet.import_key_set(api.get("/oauth/jwks").json())
    id_claims = _id_token(token, jwks, settings)
    assert id_claims["amr"] == ["pwd", "otp", "mfa"]
    assert id_claims["acr"] == ACR_MFA
    # auth_time: when the password was checked, not when the code came (OIDC Core §2).
    assert typed_at - 1 <= id_claims["auth_time"] <= typed_at + 2
    access = jwt.decode(token["access_token"], jwks)
    assert access.header["typ"] == "at+jwt"
    assert access.claims["amr"] == ["pwd", "otp", "mfa"] and access.claims["acr"] == ACR_MFA
    assert access.claims["auth_time"] == id_claims["auth_time"]

    refreshed: dict[str, Any] = app.refresh_token(
        f"{base}/oauth/token", refresh_token=token["refresh_token"]
    )
    # No ID token on refresh (OIDC Core §12.2 leaves it optional); the refreshed
    # access token keeps the login's amr, acr and auth_time (M5).
    assert "id_token" not in refreshed
    again = jwt.decode(refreshed["access_token"], jwks).claims
    assert again["amr"] == ["pwd", "otp", "mfa"] and again["acr"] == ACR_MFA
    assert again["auth_time"] == id_claims["auth_time"]


def _id_token(token: dict[str, Any], jwks: KeySet, settings: Settings) -> CodeIDToken:
    decoded = jwt.decode(token["id_token"], jwks)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": settings.issuer},
            "aud": {"essential": True, "value": "photo-app"},
        },
        params={"nonce": NONCE, "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    return claims
