"""Registration, own profile and user lookup, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register, user_count
from userservice.app import create_app
from userservice.settings import Settings


def token_request(client: TestClient, **form: str) -> httpx.Response:
    response: httpx.Response = client.post("/oauth/token", data=form)
    return response


def password_grant(client: TestClient, email: str, password: str) -> httpx.Response:
    return token_request(client, grant_type="password", username=email, password=password)


def refresh_grant(client: TestClient, refresh_token: str) -> httpx.Response:
    return token_request(client, grant_type="refresh_token", refresh_token=refresh_token)


# --- registration ---------------------------------------------------------------


def test_register_returns_201_with_location_and_no_password_hash(client: TestClient) -> None:
    response = client.post(
        "/users", json={"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/users/{body['id']}"
    uuid.UUID(body["id"])
    assert body["email"] == "ada@example.com"
    assert body["display_name"] == "Ada"
    assert body["is_admin"] is False and body["email_verified"] is False
    assert "password_hash" not in body and "password" not in body
    assert "argon2" not in response.text and PASSWORD not in response.text


def test_password_of_seven_chars_is_refused_and_eight_accepted(client: TestClient) -> None:
    """E2: at least 8 characters, no composition rules."""
    short = client.post("/users", json={"email": "a@example.com", "password": "zq7#kLm"})
    assert short.status_code == 422
    assert short.json()["code"] == "weak_password"
    register(client, "a@example.com", "zq7#kLmv")
    assert password_grant(client, "a@example.com", "zq7#kLmv").status_code == 200


def test_long_password_is_accepted_and_never_truncated(client: TestClient) -> None:
    """E2: 64+ characters allowed and no silent truncation (bcrypt's 72-byte trap)."""
    password = "".join(chr(ord("a") + i % 26) for i in range(99)) + "!"
    assert len(password) == 100
    register(client, "long@example.com", password)
    assert password_grant(client, "long@example.com", password).status_code == 200
    truncated = password_grant(client, "long@example.com", password[:72])
    assert truncated.status_code == 400
    assert truncated.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "password", ["🔐🦄🌈 ünïcödé Пароль", "密码是一个长句子吗", "\u00e9t\u00e9 \u00e0 la plage"]
)
def test_any_unicode_password_registers_and_logs_in(client: TestClient, password: str) -> None:
    """E2: any Unicode, emoji included."""
    register(client, "uni@example.com", password)
    assert password_grant(client, "uni@example.com", password).status_code == 200


@pytest.mark.parametrize("password", ["password1", "qwertyuiop", "Password1", "iloveyou"])
def test_common_passwords_are_refused(client: TestClient, app: FastAPI, password: str) -> None:
    """E2: common/breached passwords refused."""
    response = client.post("/users", json={"email": "c@example.com", "password": password})
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert user_count(app) == 0


@pytest.mark.parametrize(
    "extra",
    [{"is_admin": True}, {"email_verified": True}, {"id": str(uuid.uuid4())}, {"is_active": True}],
)
def test_privileged_fields_in_registration_are_refused_and_nothing_is_created(
    client: TestClient, app: FastAPI, extra: dict[str, Any]
) -> None:
    """E9 / G4: no mass assignment of roles, verification or ids."""
    body = {"email": "mallory@example.com", "password": PASSWORD, **extra}
    response = client.post("/users", json=body)
    assert response.status_code == 422
    assert user_count(app) == 0
    created = register(client, "mallory@example.com")
    assert created["is_admin"] is False and created["email_verified"] is False


@pytest.mark.parametrize(
    "twin",
    [
        "ada@example.com",
        "ADA@EXAMPLE.COM",
        " ada@example.com ",
        "\uff41\uff44\uff41@example.com",  # full-width "ada": NFKC-equivalent
        "\uff21\uff24\uff21\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
    ],
)
def test_duplicate_email_in_any_case_or_unicode_form_is_409(client: TestClient, twin: str) -> None:
    """Emails are normalized (NFKC + case) before the uniqueness check."""
    first = register(client, "Ada@Example.COM")
    assert first["email"] == "ada@example.com"
    response = client.post("/users", json={"email": twin, "password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "a@", "@example.com", "a b@example.com", "a@@example.com", "a\x00@x.io"],
)
def test_invalid_email_is_422(client: TestClient, app: FastAPI, email: str) -> None:
    response = client.post("/users", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422
    assert user_count(app) == 0


def test_registration_closed_is_403(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(registration_open=False))
    with TestClient(app, base_url="https://testserver") as closed:
        response = closed.post("/users", json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status_code == 403
        assert response.json()["code"] == "registration_closed"
        assert user_count(app) == 0


# --- own profile -------------------------------------------------------------------


def test_read_me_returns_own_profile(client: TestClient, user: dict[str, Any]) -> None:
    response = client.get("/users/me", headers=bearer(user["tokens"]["access_token"]))
    assert response.status_code == 200
    assert response.json()["id"] == user["id"]
    assert "password_hash" not in response.text


def test_read_me_without_credentials_is_401(client: TestClient) -> None:
    response = client.get("/users/me")
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]


def test_patch_me_changes_display_name(client: TestClient, user: dict[str, Any]) -> None:
    auth = bearer(user["tokens"]["access_token"])
    response = client.patch("/users/me", json={"display_name": "Countess"}, headers=auth)
    assert response.status_code == 200
    assert response.json()["display_name"] == "Countess"
    assert client.get("/users/me", headers=auth).json()["display_name"] == "Countess"


def test_patch_me_does_not_change_the_email(client: TestClient, user: dict[str, Any]) -> None:
    """L20: the address changes only through POST /users/me/email, once the new one
    is verified; PATCH answers 422 saying so, and changes nothing else either."""
    auth = bearer(user["tokens"]["access_token"])
    register(client, "babbage@example.com")
    for body in (
        {"email": "lovelace@example.com", "current_password": PASSWORD},
        {"email": "BABBAGE@example.com", "current_password": PASSWORD},
        {"email": "lovelace@example.com", "display_name": "Countess"},
        {"email": "lovelace@example.com"},
    ):
        refused = client.patch("/users/me", json=body, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_input"
        assert "POST /users/me/email" in refused.json()["detail"]
    profile = client.get("/users/me", headers=auth).json()
    assert (profile["email"], profile["display_name"]) == ("ada@example.com", "Ada")
    assert password_grant(client, "ada@example.com", PASSWORD).status_code == 200
    assert password_grant(client, "lovelace@example.com", PASSWORD).status_code == 400


def test_password_change_with_wrong_current_password_is_403_and_changes_nothing(
    client: TestClient, user: dict[str, Any]
) -> None:
    auth = bearer(user["tokens"]["access_token"])
    for body in (
        {"password": "a brand new secret"},
        {"password": "a brand new secret", "current_password": "guess guess guess"},
    ):
        assert client.patch("/users/me", json=body, headers=auth).status_code == 403
    assert client.get("/users/me", headers=auth).status_code == 200
    assert password_grant(client, "ada@example.com", PASSWORD).status_code == 200
    assert password_grant(client, "ada@example.com", "a brand new secret").status_code == 400


def test_password_change_revokes_old_tokens_and_swaps_passwords(
    client: TestClient, user: dict[str, Any]
) -> None:
    """E7 / C8: a password change revokes everything issued before it."""
    tokens = user["tokens"]
    new_password = "a brand new secret"
    response = client.patch(
        "/users/me",
        json={"password": new_password, "current_password": PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 200
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = refresh_grant(client, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert password_grant(client, "ada@example.com", PASSWORD).status_code == 400
    fresh = login(client, "ada@example.com", new_password)
    assert client.get("/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_new_password_is_checked_against_the_policy(
    client: TestClient, user: dict[str, Any]
) -> None:
    """E2 applies to password changes too."""
    response = client.patch(
        "/users/me",
        json={"password": "password1", "current_password": PASSWORD},
        headers=bearer(user["tokens"]["access_token"]),
    )
    assert response.status_code == 422
    assert password_grant(client, "ada@example.com", PASSWORD).status_code == 200


def test_delete_me_removes_account_and_invalidates_tokens(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C8: deleting the account kills its tokens."""
    tokens = user["tokens"]
    auth = bearer(tokens["access_token"])
    assert client.delete("/users/me", headers=auth).status_code == 204
    assert client.get("/users/me", headers=auth).status_code == 401
    assert refresh_grant(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert password_grant(client, "ada@example.com", PASSWORD).status_code == 400
    register(client, "ada@example.com")  # the address is free again


# --- lookup by id ------------------------------------------------------------------


def test_get_user_by_id_self_is_200(client: TestClient, user: dict[str, Any]) -> None:
    response = client.get(f"/users/{user['id']}", headers=bearer(user["tokens"]["access_token"]))
    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


def test_get_other_user_as_non_admin_is_404(client: TestClient, user: dict[str, Any]) -> None:
    """G2: a non-admin cannot see, or even confirm, another account."""
    other = register(client, "babbage@example.com")
    response = client.get(f"/users/{other['id']}", headers=bearer(user["tokens"]["access_token"]))
    assert response.status_code == 404
    assert "babbage" not in response.text
    unknown = client.get(f"/users/{uuid.uuid4()}", headers=bearer(user["tokens"]["access_token"]))
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == response.json()["detail"]


def test_get_other_user_as_admin_is_200(
    client: TestClient, user: dict[str, Any], admin: dict[str, Any]
) -> None:
    response = client.get(f"/users/{user['id']}", headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


def test_get_unknown_user_as_admin_is_404(client: TestClient, admin: dict[str, Any]) -> None:
    response = client.get(f"/users/{uuid.uuid4()}", headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "1 OR 1=1", "0" * 40])
def test_get_user_with_non_uuid_id_is_422(
    client: TestClient, admin: dict[str, Any], bad_id: str
) -> None:
    response = client.get(f"/users/{bad_id}", headers=bearer(admin["tokens"]["access_token"]))
    assert response.status_code == 422
