"""How the user logged in reaches every token (M5): the authorization code flow,
its ID token checked as a relying party does (signature against our JWKS, then
Authlib's OIDC claim validation), amr (RFC 8176) / acr / auth_time in the ID token
and the access token (RFC 9068 §2.2.1), unchanged in the access token across
refresh (RFC 9470 §6; a refresh returns no ID token, which OIDC Core §12.2 leaves
optional), shown by introspection; the password grant says pwd; discovery
lists the acr values and claims; rows written before amr existed read as pwd."""

from __future__ import annotations

import time
from typing import Any

from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from tests.support.accounts import register
from tests.support.introspection import introspect, resource_server
from tests.support.oauth_clients import jwt_claims, password_form
from tests.support.oauth_flow import EMAIL, add_app, obtain_code, redeem, signed_in
from tests.support.oauth_mfa import second_factor_session, with_app
from tests.support.wiring import engine_of
from userservice.db.models import AuthorizationCode, BrowserSession, RefreshToken
from userservice.security.secrets import digest
from userservice.services.assurance import ACR_MFA, ACR_PASSWORD

PWD = ["pwd"]
MFA = ["pwd", "otp", "mfa"]
NONCE = "n-amr-0S6_WzA2Mj"


def _id_token(client: TestClient, token: str, access_token: str, **params: str) -> Any:
    """The ID token's claims once a relying party has checked it: the RS256
    signature against /oauth/jwks, then iss, aud, exp, iat, nonce and at_hash."""
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json())
    decoded = jwt.decode(token, jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": "https://testserver"},
            "aud": {"essential": True, "value": "photo-app"},
        },
        params={"access_token": access_token, **params},
    )
    claims.validate(leeway=60)
    return claims


def _code_flow(client: TestClient) -> dict[str, Any]:
    code, verifier = obtain_code(client, scope="openid profile offline_access", nonce=NONCE)
    response = redeem(client, code, verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _refresh(client: TestClient, refresh_token: str) -> dict[str, Any]:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "photo-app",
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _says(claims: Any, amr: list[str], acr: str, auth_time: int | None = None) -> None:
    assert claims["amr"] == amr and claims["acr"] == acr, dict(claims)
    if auth_time is not None:
        assert claims["auth_time"] == auth_time
    else:
        assert abs(claims["auth_time"] - time.time()) < 60


def _set_null(app: FastAPI, table: Any, where: Any) -> None:
    # A row as written before amr existed (migration 0007 added the column NULL).
    with engine_of(app).begin() as conn:
        assert conn.execute(update(table).where(where).values(amr=None)).rowcount == 1


def test_m5_password_login_says_pwd_everywhere(client: TestClient, app: FastAPI) -> None:
    add_app(client)
    signed_in(client)
    tokens = _code_flow(client)
    id_token = _id_token(client, tokens["id_token"], tokens["access_token"], nonce=NONCE)
    _says(id_token, PWD, ACR_PASSWORD)
    _says(jwt_claims(tokens["access_token"]), PWD, ACR_PASSWORD, id_token["auth_time"])


def test_m5_second_factor_login_says_mfa_and_refresh_repeats_it(
    client: TestClient, app: FastAPI
) -> None:
    add_app(client)
    user_id, secret = with_app(client, EMAIL)
    second_factor_session(client, user_id, secret)
    tokens = _code_flow(client)
    first = _id_token(client, tokens["id_token"], tokens["access_token"], nonce=NONCE)
    _says(first, MFA, ACR_MFA)
    signed_in_at = first["auth_time"]
    _says(jwt_claims(tokens["access_token"]), MFA, ACR_MFA, signed_in_at)

    time.sleep(1.1)  # a refresh's iat is later; its auth_time must not be
    refreshed = _refresh(client, tokens["refresh_token"])
    # No ID token on refresh (OIDC Core §12.2 leaves it optional): the refreshed
    # access token is where the login's amr, acr and auth_time go on.
    assert "id_token" not in refreshed
    access = jwt_claims(refreshed["access_token"])
    _says(access, MFA, ACR_MFA, signed_in_at)
    assert access["sub"] == first["sub"] == str(user_id) and access["iat"] > first["iat"]

    # The successor carries it on: a second refresh says the same.
    twice = _refresh(client, refreshed["refresh_token"])
    assert "id_token" not in twice
    _says(jwt_claims(twice["access_token"]), MFA, ACR_MFA, signed_in_at)

    resource_server(app)
    shown = introspect(client, twice["access_token"], "gateway")
    assert shown.status_code == 200 and shown.json()["active"] is True, shown.text
    _says(shown.json(), MFA, ACR_MFA, signed_in_at)


def test_m5_a_refresh_without_openid_has_no_id_token(client: TestClient) -> None:
    add_app(client)
    signed_in(client)
    code, verifier = obtain_code(client, scope="profile offline_access")
    tokens = redeem(client, code, verifier).json()
    assert "id_token" not in tokens
    refreshed = _refresh(client, tokens["refresh_token"])
    assert "id_token" not in refreshed
    _says(jwt_claims(refreshed["access_token"]), PWD, ACR_PASSWORD)


def test_m5_password_grant_tokens_say_pwd(client: TestClient, app: FastAPI) -> None:
    register(client, "bob@example.com")
    tokens = client.post("/oauth/token", data=password_form("bob@example.com")).json()
    access = jwt_claims(tokens["access_token"])
    _says(access, PWD, ACR_PASSWORD)
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    _says(jwt_claims(refreshed.json()["access_token"]), PWD, ACR_PASSWORD, access["auth_time"])
    resource_server(app)
    shown = introspect(client, tokens["access_token"], "gateway").json()
    _says(shown, PWD, ACR_PASSWORD, access["auth_time"])


def test_m5_discovery_lists_acr_values_and_claims(client: TestClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = client.get(path).json()
        assert metadata["acr_values_supported"] == [ACR_PASSWORD, ACR_MFA]
        assert {"acr", "amr", "auth_time"} <= set(metadata["claims_supported"])


def test_m5_a_session_from_before_amr_reads_as_pwd(client: TestClient, app: FastAPI) -> None:
    add_app(client)
    user_id, secret = with_app(client, EMAIL)
    second_factor_session(client, user_id, secret)
    _set_null(app, BrowserSession, BrowserSession.user_id == user_id)
    tokens = _code_flow(client)
    _says(
        _id_token(client, tokens["id_token"], tokens["access_token"], nonce=NONCE),
        PWD,
        ACR_PASSWORD,
    )


def test_m5_a_code_from_before_amr_reads_as_pwd(client: TestClient, app: FastAPI) -> None:
    add_app(client)
    user_id, secret = with_app(client, EMAIL)
    second_factor_session(client, user_id, secret)
    code, verifier = obtain_code(client, scope="openid offline_access", nonce=NONCE)
    _set_null(app, AuthorizationCode, AuthorizationCode.digest == digest(code))
    tokens = redeem(client, code, verifier).json()
    _says(
        _id_token(client, tokens["id_token"], tokens["access_token"], nonce=NONCE),
        PWD,
        ACR_PASSWORD,
    )
    _says(jwt_claims(tokens["access_token"]), PWD, ACR_PASSWORD)


def test_m5_a_refresh_token_from_before_amr_reads_as_pwd(client: TestClient, app: FastAPI) -> None:
    add_app(client)
    user_id, secret = with_app(client, EMAIL)
    second_factor_session(client, user_id, secret)
    tokens = _code_flow(client)
    _says(jwt_claims(tokens["access_token"]), MFA, ACR_MFA)
    _set_null(app, RefreshToken, RefreshToken.digest == digest(tokens["refresh_token"]))
    refreshed = _refresh(client, tokens["refresh_token"])
    assert "id_token" not in refreshed
    _says(jwt_claims(refreshed["access_token"]), PWD, ACR_PASSWORD)
