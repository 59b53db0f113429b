"""OpenID Connect discovery, userinfo and the user's list of grants (D7, D8, D10, A9)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.accounts import PASSWORD, bearer, register
from tests.support.oauth_flow import add_app, authorize_url, challenge_of, decide, login_via, query

REDIRECT = "https://rp.example/cb"
VERIFIER = "verifier-" + "k" * 50


def _add_public_app(app: FastAPI, scope: str = "openid profile email offline_access") -> None:
    with TestClient(app, base_url="https://testserver") as client:
        add_app(client, "spa", redirect_uris=(REDIRECT,), name="Single Page App", scope=scope)


def _code_flow(client: TestClient, scope: str) -> dict[str, Any]:
    url = authorize_url(
        "spa",
        challenge=challenge_of(VERIFIER),
        redirect_uri=REDIRECT,
        scope=scope,
        state="st",
        nonce="nn",
    )
    start = client.get(url, follow_redirects=False)
    assert start.status_code == 303, start.text
    signed_in = login_via(client, start.headers["location"])
    assert signed_in.status_code == 303, signed_in.text
    decided = decide(client, signed_in.headers["location"], allow=True)
    code = query(decided.headers["location"])["code"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "spa",
            "code_verifier": VERIFIER,
        },
    )
    assert token.status_code == 200, token.text
    body: dict[str, Any] = token.json()
    return body


def test_discovery_documents_agree_and_are_complete(client: TestClient) -> None:
    """D8: required fields, no `token` response type, S256 only, same issuer."""
    oidc = client.get("/.well-known/openid-configuration").json()
    oauth = client.get("/.well-known/oauth-authorization-server").json()
    assert oidc == oauth
    assert oidc["issuer"] == "https://testserver"
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert oidc[name], name
    assert oidc["response_types_supported"] == ["code"]
    assert oidc["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in oidc["id_token_signing_alg_values_supported"]
    assert oidc["authorization_response_iss_parameter_supported"] is True


def test_id_token_and_userinfo_carry_only_consented_claims(
    app: FastAPI, client: TestClient
) -> None:
    """D7 and D10: a token for `openid` alone reveals neither email nor name."""
    register(client, "ada@example.com", display_name="Ada")
    _add_public_app(app)
    tokens = _code_flow(client, "openid")
    assert "refresh_token" not in tokens  # third party without offline_access
    info = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200
    assert set(info.json()) == {"sub"}
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json())
    id_token = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    assert id_token.header["kid"] in {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
    assert id_token.claims["iss"] == "https://testserver"
    assert id_token.claims["aud"] == "spa" and id_token.claims["nonce"] == "nn"
    assert "email" not in id_token.claims and "auth_time" in id_token.claims


def test_userinfo_with_profile_and_email(app: FastAPI, client: TestClient) -> None:
    register(client, "ada@example.com", display_name="Ada")
    _add_public_app(app)
    tokens = _code_flow(client, "openid profile email offline_access")
    assert "refresh_token" in tokens
    posted = client.post("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert posted.status_code == 200
    assert posted.json()["email"] == "ada@example.com" and posted.json()["name"] == "Ada"


def test_userinfo_refuses_missing_bad_or_query_tokens(client: TestClient) -> None:
    assert client.get("/oauth/userinfo").status_code == 401
    bad = client.get("/oauth/userinfo", headers=bearer("not-a-token"))
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert client.get("/oauth/userinfo?access_token=x").status_code == 400  # C12


def test_user_lists_and_revokes_a_grant(app: FastAPI, client: TestClient) -> None:
    """A9: consent is listed; withdrawing it ends that app's refresh tokens."""
    register(client, "ada@example.com")
    _add_public_app(app)
    tokens = _code_flow(client, "openid offline_access")
    own = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "ada@example.com",
            "password": PASSWORD,
        },
    ).json()["access_token"]
    grants = client.get("/users/me/grants", headers=bearer(own)).json()
    assert [(g["client_id"], g["client_name"]) for g in grants] == [("spa", "Single Page App")]
    assert client.delete("/users/me/grants/spa", headers=bearer(own)).status_code == 204
    assert client.get("/users/me/grants", headers=bearer(own)).json() == []
    # The app's access token (a JWT) stops too, not only its refresh token.
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.get("/users/me", headers=bearer(own)).status_code == 200
    again = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "spa",
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert client.delete("/users/me/grants/spa", headers=bearer(own)).status_code == 404
