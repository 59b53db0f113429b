"""RFC 7662 introspection and RFC 7009 access-token revocation (C9, C10), and who
may learn what about a token (S4)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.introspection import introspect, resource_server
from tests.support.oauth_clients import (
    SECRET,
    add_service_client,
    basic_auth,
    confidential_first_party,
    jwt_claims,
    password_form,
    public_first_party,
)
from userservice.wiring import wired

INACTIVE = {"active": False}


def own_token(client: TestClient, scope: str | None = None) -> dict[str, Any]:
    """A token pair issued to the confidential client `backend` for ada."""
    form = password_form(**({} if scope is None else {"scope": scope}))
    response = client.post("/oauth/token", data=form, headers=basic_auth("backend", SECRET))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_introspection_without_client_authentication_is_401(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C10: anonymous callers and public clients may not introspect."""
    token = user["tokens"]["access_token"]
    anonymous = client.post("/oauth/introspect", data={"token": token})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    assert "www-authenticate" in anonymous.headers
    assert anonymous.headers["cache-control"] == "no-store"


def test_a_client_introspects_its_own_live_access_token(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    confidential_first_party(app, "backend")
    body = introspect(client, own_token(client)["access_token"]).json()
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["sub"] == user["id"]
    assert body["username"] == "ada@example.com"
    assert body["client_id"] == "backend"
    assert body["iss"] == "https://testserver"


def test_s4_another_clients_access_token_is_exactly_inactive(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """S4 (RFC 7662 §4): a client learns nothing about tokens issued to others, not
    even that they are live, nor the user's email."""
    confidential_first_party(app, "backend")
    add_service_client(app, scope="users:read")
    service = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "users:read"},
        headers=basic_auth("reporting", SECRET),
    ).json()["access_token"]
    foreign = (user["tokens"]["access_token"], service)
    for token in foreign:
        response = introspect(client, token)
        assert response.status_code == 200
        assert response.json() == INACTIVE
    assert introspect(client, service, "reporting").json()["active"] is True
    assert introspect(client, own_token(client)["access_token"]).json()["active"] is True


def test_s4_a_resource_server_may_introspect_any_access_token(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    resource_server(app)
    access = user["tokens"]["access_token"]
    body = introspect(client, access, "gateway").json()
    assert body["active"] is True and body["client_id"] == "userservice-frontend"
    assert body["sub"] == user["id"] and body["username"] == "ada@example.com"
    # The mark is the administrator's to take back, with effect on the next call.
    resource_server(app, on=False)
    assert introspect(client, access, "gateway").json() == INACTIVE


def test_s4_username_only_when_the_token_has_the_email_scope(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    confidential_first_party(app, "backend")
    resource_server(app)
    without = own_token(client, "openid profile")["access_token"]
    with_email = own_token(client, "openid email")["access_token"]
    for caller in ("backend", "gateway"):
        body = introspect(client, without, caller).json()
        assert body["active"] is True and body["sub"] == user["id"], caller
        assert "username" not in body and "ada@example.com" not in str(body), caller
        assert introspect(client, with_email, caller).json()["username"] == "ada@example.com"


def test_s4_authentication_claims_of_the_token_are_in_the_answer(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """auth_time (RFC 9470 §6), acr and amr travel with the token to the resource
    server that decides whether the login is recent or strong enough."""
    resource_server(app)
    tokens = wired(app).tokens
    claims = jwt_claims(user["tokens"]["access_token"])
    claims.update(auth_time=claims["iat"] - 30, acr="1", amr=["pwd"])
    signed = tokens.keys.sign(claims, tokens.settings.alg, "at+jwt")
    body = introspect(client, signed, "gateway").json()
    assert body["active"] is True
    assert (body["auth_time"], body["acr"], body["amr"]) == (claims["iat"] - 30, "1", ["pwd"])
    issued = jwt_claims(user["tokens"]["access_token"])
    plain = introspect(client, user["tokens"]["access_token"], "gateway").json()
    for name in ("auth_time", "acr", "amr"):
        assert (name in plain) == (name in issued), name


def test_s4_a_foreign_refresh_token_is_inactive_even_for_a_resource_server(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    resource_server(app)
    assert introspect(client, user["tokens"]["refresh_token"], "gateway").json() == INACTIVE


def test_inactive_tokens_are_exactly_active_false(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C10: revoked, garbage, another client's refresh token, a disabled user's token
    -> exactly {"active": false}."""
    confidential_first_party(app, "backend")
    resource_server(app)
    access = user["tokens"]["access_token"]
    refresh = user["tokens"]["refresh_token"]
    for garbage in ("x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "é" * 50):
        assert introspect(client, garbage).json() == INACTIVE
    # Refresh tokens are visible to their own client only.
    assert introspect(client, refresh).json() == INACTIVE
    assert introspect(client, access, "gateway").json()["active"] is True
    revoked = client.post("/oauth/revoke", data={"token": access})
    assert revoked.status_code == 200
    assert introspect(client, access, "gateway").json() == INACTIVE


def test_introspection_follows_password_change(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    resource_server(app)
    access = user["tokens"]["access_token"]
    assert introspect(client, access, "gateway").json()["active"] is True
    changed = client.patch(
        "/users/me",
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=bearer(access),
    )
    assert changed.status_code == 200
    assert introspect(client, access, "gateway").json() == INACTIVE


def test_a_client_introspects_its_own_refresh_token(app: FastAPI, client: TestClient) -> None:
    confidential_first_party(app, "backend")
    register(client, "ada@example.com")
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    issued = client.post("/oauth/token", data=form, headers=basic_auth("backend", SECRET)).json()
    body = introspect(client, issued["refresh_token"]).json()
    assert body["active"] is True and body["token_type"] == "refresh_token"
    client.post(
        "/oauth/revoke",
        data={"token": issued["refresh_token"]},
        headers=basic_auth("backend", SECRET),
    )
    assert introspect(client, issued["refresh_token"]).json() == INACTIVE


def test_revoking_another_clients_access_token_keeps_it_valid(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C9: 200, but the token of the other client keeps working."""
    public_first_party(app, "frontend-b")
    access = user["tokens"]["access_token"]
    response = client.post("/oauth/revoke", data={"token": access, "client_id": "frontend-b"})
    assert response.status_code == 200
    assert client.get("/users/me", headers=bearer(access)).status_code == 200


def test_metadata_lists_introspection(client: TestClient) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["introspection_endpoint"] == "https://testserver/oauth/introspect"
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]


def test_login_still_works_after_revocations(client: TestClient) -> None:
    register(client, "grace@example.com")
    first = login(client, "grace@example.com")["access_token"]
    client.post("/oauth/revoke", data={"token": first})
    second = login(client, "grace@example.com")["access_token"]
    assert client.get("/users/me", headers=bearer(second)).status_code == 200
    assert client.get("/users/me", headers=bearer(first)).status_code == 401


def test_deleting_a_client_ends_the_access_tokens_it_holds(
    app: FastAPI, client: TestClient
) -> None:
    """A deleted client's user tokens stop at once (checked in the bearer query)."""
    confidential_first_party(app, "backend")
    register(client, "ada@example.com")
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD}
    issued = client.post("/oauth/token", data=form, headers=basic_auth("backend", SECRET))
    access = issued.json()["access_token"]
    assert client.get("/users/me", headers=bearer(access)).status_code == 200
    wired(app).clients.delete("backend")
    assert client.get("/users/me", headers=bearer(access)).status_code == 401


def test_a_failed_client_authentication_tells_nothing_about_the_token(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """The token's read goes out beside the client's (token_endpoint.py); with a
    wrong secret or a public client, every token gets the same 401."""
    confidential_first_party(app, "backend")
    resource_server(app, "backend")
    public_first_party(app, "frontend-b")
    live = user["tokens"]["access_token"]
    revoked = login(client, "ada@example.com")["access_token"]
    client.post("/oauth/revoke", data={"token": revoked})
    for token in (live, revoked, "a.b.c", user["tokens"]["refresh_token"]):
        wrong = client.post(
            "/oauth/introspect", data={"token": token}, headers=basic_auth("backend", "wrong")
        )
        public = client.post("/oauth/introspect", data={"token": token, "client_id": "frontend-b"})
        for response in (wrong, public):
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_client"
    assert introspect(client, live).json()["active"] is True
