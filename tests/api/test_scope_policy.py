"""What a token may do on the account API (S1, S2, S3): third-party tokens read only
what their scopes grant and never manage the account; refusals say which scope
would help (RFC 6750 §3.1) or that none would; deletion needs a recent login."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, register
from tests.support.callers import (
    THIRD_PARTY,
    assert_first_party_only,
    assert_insufficient_scope,
    basic_headers,
    first_party_headers,
    third_party_token,
)
from tests.support.oauth_clients import jwt_claims
from userservice.app import create_app
from userservice.settings import Settings


def _third(client: TestClient, scope: str) -> dict[str, str]:
    return bearer(third_party_token(client, scope)["access_token"])


def test_openid_alone_reads_no_profile(with_app: TestClient) -> None:
    """S2: an app authorised with `openid` only learns the account id (userinfo)."""
    headers = _third(with_app, "openid")
    assert_insufficient_scope(with_app.get("/users/me", headers=headers), "profile")
    assert with_app.get("/oauth/userinfo", headers=headers).json().keys() == {"sub"}


def test_profile_without_email_hides_the_email(with_app: TestClient) -> None:
    body = with_app.get("/users/me", headers=_third(with_app, "openid profile")).json()
    assert body["display_name"] == "Ada"
    assert "email" not in body and "email_verified" not in body
    full = with_app.get("/users/me", headers=_third(with_app, "openid profile email")).json()
    assert full["email"] == "ada@example.com"
    assert full["email_verified"] is False


def test_changing_the_profile_needs_profile_write(with_app: TestClient) -> None:
    headers = _third(with_app, "openid profile email")
    refused = with_app.patch("/users/me", json={"display_name": "Mallory"}, headers=headers)
    assert_insufficient_scope(refused, "profile:write")
    writer = _third(with_app, "openid profile profile:write")
    changed = with_app.patch("/users/me", json={"display_name": "Ada L."}, headers=writer)
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] == "Ada L."
    assert "email" not in changed.json()


def test_third_parties_never_manage_the_account(with_app: TestClient) -> None:
    """S2: whatever scope it holds, a third-party app cannot change the email or the
    password, list or withdraw grants, or delete the account."""
    headers = _third(with_app, "openid profile profile:write email offline_access")
    for response in (
        with_app.patch(
            "/users/me",
            json={"email": "mallory@evil.example", "current_password": PASSWORD},
            headers=headers,
        ),
        with_app.patch(
            "/users/me",
            json={"password": "another long passphrase", "current_password": PASSWORD},
            headers=headers,
        ),
        with_app.get("/users/me/grants", headers=headers),
        with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=headers),
        with_app.delete("/users/me", headers=headers),
    ):
        assert_first_party_only(response)
    still = with_app.get("/users/me", headers=basic_headers())
    assert still.status_code == 200
    assert still.json()["email"] == "ada@example.com"


def test_the_owner_manages_the_account_in_person_or_first_party(with_app: TestClient) -> None:
    assert with_app.get("/users/me/grants", headers=basic_headers()).status_code == 200
    first = first_party_headers(with_app)
    assert with_app.get("/users/me/grants", headers=first).status_code == 200
    renamed = with_app.patch("/users/me", json={"display_name": "Ada B."}, headers=first)
    assert renamed.status_code == 200, renamed.text
    assert with_app.delete("/users/me", headers=first).status_code == 204


def test_deletion_needs_a_recent_login(
    with_app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3: a first-party token from a login more than five minutes ago cannot delete
    the account; the refusal is RFC 9470's challenge. Basic (the password itself,
    with the request) always can."""
    headers = first_party_headers(with_app)
    later = time.time() + 301
    monkeypatch.setattr("userservice.services.policy.time.time", lambda: later)
    refused = with_app.delete("/users/me", headers=headers)
    assert refused.status_code == 401, refused.text
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge
    assert refused.json()["code"] == "insufficient_user_authentication"
    assert with_app.get("/users/me", headers=headers).status_code == 200
    assert with_app.delete("/users/me", headers=basic_headers()).status_code == 204


def test_auth_time_is_carried_and_unchanged_across_refresh(
    with_app: TestClient, app: FastAPI
) -> None:
    """S3 / RFC 9470 §6: access tokens and introspection say when the user logged in,
    and a refresh does not make an old login look new."""
    tokens = third_party_token(with_app, "openid profile offline_access")
    signed_in_at = jwt_claims(tokens["access_token"])["auth_time"]
    assert abs(signed_in_at - time.time()) < 60
    time.sleep(1.1)
    refreshed = with_app.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": THIRD_PARTY,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    claims = jwt_claims(refreshed.json()["access_token"])
    assert claims["auth_time"] == signed_in_at
    assert claims["iat"] > signed_in_at
    password_grant = jwt_claims(first_party_headers(with_app)["Authorization"][7:])
    assert abs(password_grant["auth_time"] - time.time()) < 60


def test_a_dead_token_is_answered_with_invalid_token(client: TestClient) -> None:
    """RFC 6750 §3.1: a 401 after a presented token says invalid_token."""
    response = client.get("/users/me", headers=bearer("a.b.c"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    anonymous = client.get("/users/me")
    assert anonymous.status_code == 401
    assert "error=" not in anonymous.headers["www-authenticate"]


def test_scopes_are_published(client: TestClient) -> None:
    discovery = client.get("/.well-known/openid-configuration").json()
    assert "profile:write" in discovery["scopes_supported"]
    schema = client.get("/openapi.json").json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert "profile:write" in flows["password"]["scopes"]
    assert {"OAuth2PasswordBearer": ["profile"]} in schema["paths"]["/users/me"]["get"]["security"]
    patch = schema["paths"]["/users/me"]["patch"]["security"]
    assert {"OAuth2PasswordBearer": ["profile:write"]} in patch


def test_guesses_at_the_current_password_are_throttled(
    make_settings: Callable[..., Settings],
) -> None:
    """S3: the current password proves presence for a password or email change, so a
    stolen token must not buy unlimited guesses at it (E4: 429 + Retry-After)."""
    settings = make_settings(login_limit_per_account="3/minute")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "ada@example.com")
        headers = first_party_headers(client, "ada@example.com")
        change = {"password": "another long passphrase", "current_password": "wrong guess"}
        answers = [client.patch("/users/me", json=change, headers=headers) for _ in range(4)]
        assert [r.status_code for r in answers] == [403, 403, 403, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        # The sign-in itself is not locked by these guesses.
        assert first_party_headers(client, "ada@example.com")
