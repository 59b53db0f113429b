"""Step-up (M11) in the authorization-code tests on the TestClient
(https://testserver): a password-only session, the code step after the password,
the tokens a code buys and its ID token checked as a relying party does."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.factors import now_code
from tests.support.oauth_flow import EMAIL, REDIRECT, hidden, query, redeem
from tests.support.oauth_mfa import with_app
from userservice.services.assurance import PASSWORD_ONLY
from userservice.web.browser import SESSION_COOKIE
from userservice.wiring import wired

ISSUER = "https://testserver"
NONCE = "n-step-up-0S6_WzA2Mj"


def pwd_session(client: TestClient, user_id: uuid.UUID, auth_time: int | None = None) -> None:
    """The session a password alone ends in (amr pwd): what an account that
    enrolled its app after signing in holds (a forced enrolment's session says
    pwd)."""
    app = client.app
    assert isinstance(app, FastAPI)
    when = auth_time if auth_time is not None else int(time.time())
    raw = wired(app).sessions.start(user_id, when, amr=PASSWORD_ONLY)
    client.cookies.set(SESSION_COOKIE, raw, domain="testserver.local", path="/")


def app_user_with_pwd_session(client: TestClient) -> str:
    """Ada with a confirmed app and a password-only session; her app's secret."""
    user_id, secret = with_app(client, EMAIL)
    time.sleep(1.05)  # the session starts after enrolment ended every earlier one
    pwd_session(client, user_id)
    return secret


def second_step(client: TestClient, after_password: httpx.Response, secret: str) -> str:
    """The code step after the password; where the login sends the browser."""
    assert after_password.status_code == 303, after_password.text
    assert after_password.headers["location"] == "/login/second-factor"
    page = client.get("/login/second-factor")
    assert page.status_code == 200, page.text
    done = client.post(
        "/login/second-factor",
        data={"code": now_code(secret), "csrf_token": hidden(page.text, "csrf_token")},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    location: str = done.headers["location"]
    return location


def checked_id_token(client: TestClient, tokens: dict[str, Any]) -> Any:
    """The ID token's claims once checked as a relying party does: RS256 against
    /oauth/jwks, then iss, aud, exp, iat, nonce and at_hash."""
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json())
    decoded = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": "photo-app"},
        },
        params={"nonce": NONCE, "access_token": tokens["access_token"]},
    )
    claims.validate(leeway=60)
    return claims


def code_tokens(client: TestClient, location: str, verifier: str) -> dict[str, Any]:
    back = query(location)
    assert location.startswith(REDIRECT) and "code" in back, location
    assert back["iss"] == ISSUER
    response = redeem(client, back["code"], verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def next_of(login_location: str) -> str:
    """The authorization request a forced login will return to."""
    assert login_location.startswith("/login?") and "force=1" in login_location
    return parse_qs(urlsplit(login_location).query)["next"][0]
