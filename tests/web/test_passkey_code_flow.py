"""A passkey sign-in as relying parties see it (M10), on SQLite and PostgreSQL:
the authorization code flow after a passwordless sign-in, and after the password
with the passkey as second step; the ID token, verified against our JWKS, says
amr ["hwk","mfa"] or ["pwd","hwk","mfa"] and acr urn:userservice:acr:mfa, and so
does the access token."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oauth_flow import add_app, obtain_code, redeem
from tests.support.pages import EMAIL, csrf_token, web_login
from tests.support.passkey_pages import ORIGIN, as_json, options_in, passwordless, with_passkey
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.services.assurance import ACR_MFA


def _second_step(client: TestClient, soft: SoftAuthenticator) -> None:
    assert web_login(client).headers["location"] == "/login/second-factor"
    page = client.get("/login/second-factor")
    options = options_in(page.text, "passkey-second-step-options")
    form = {"csrf_token": csrf_token(page.text), "response": json.dumps(soft.get(options, ORIGIN))}
    done = client.post("/login/second-factor/passkey", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text


@pytest.mark.parametrize(
    ("how", "amr"), [("passwordless", ["hwk", "mfa"]), ("second step", ["pwd", "hwk", "mfa"])]
)
def test_m10_the_tokens_say_how_the_passkey_signed_in(
    app: FastAPI, client: TestClient, user: dict[str, Any], how: str, amr: list[str]
) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    add_app(client)
    if how == "passwordless":
        assert passwordless(client, as_json(soft)).status_code == 303
    else:
        _second_step(client, soft)
    code, verifier = obtain_code(client, scope="openid", nonce="n-passkey")
    token = redeem(client, code, verifier)
    assert token.status_code == 200, token.text
    keys = KeySet.import_key_set(client.get("/oauth/jwks").json())
    id_claims = jwt.decode(token.json()["id_token"], keys).claims
    assert id_claims["amr"] == amr and id_claims["acr"] == ACR_MFA
    access = jwt.decode(token.json()["access_token"], keys).claims
    assert access["amr"] == amr and access["acr"] == ACR_MFA
