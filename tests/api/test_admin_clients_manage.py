"""/admin/clients after registration, on SQLite and PostgreSQL: G1 (admins only),
partial updates, the built-in client, C4 secret rotation at /oauth/token, deletion
with its refresh tokens, and the OpenAPI description."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.accounts import PASSWORD, bearer
from tests.support.admin_clients import (
    BACKEND,
    INFO_FIELDS,
    ROUTES,
    WEB_APP,
    create,
    refused,
    rows,
    try_secret,
)
from tests.support.oauth_clients import assert_oauth_error, basic_auth
from tests.support.routes import admin_routes
from tests.support.wiring import engine_of
from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.db.models import RefreshToken


@pytest.fixture
def auth(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


# --- G1: admins only ----------------------------------------------------------------


def test_g1_every_client_route_refuses_anonymous_and_normal_users(
    app: FastAPI, client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    assert set(admin_routes(app)) >= ROUTES
    target = create(client, auth, **WEB_APP)["client_id"]
    before = client.get(f"/admin/clients/{target}", headers=auth).json()
    user_auth = bearer(user["tokens"]["access_token"])
    for method, path in sorted(ROUTES):
        url = path.replace("{client_id}", target)
        body = {"json": WEB_APP} if method in ("POST", "PATCH") else {}
        for headers, status in (({}, 401), (user_auth, 403)):
            response = client.request(method, url, headers=headers, **body)
            assert response.status_code == status, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert client.get(f"/admin/clients/{target}", headers=auth).json() == before
    assert len(client.get("/admin/clients", headers=auth).json()["items"]) == 2


# --- update ---------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_with_the_same_rules(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = create(client, auth, **WEB_APP, logo_uri="https://app.example.com/l.png")
    url = f"/admin/clients/{created['client_id']}"
    renamed = client.patch(url, json={"client_name": "Renamed"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    expected = {k: v for k, v in created.items() if k in INFO_FIELDS}
    assert renamed.json() == {**expected, "client_name": "Renamed"}

    for change, code in (
        ({"redirect_uris": ["https://app.example.com/cb#x"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"client_name": None}, "invalid_client_metadata"),
    ):
        refused(client.patch(url, json=change, headers=auth), code)
    refused(client.patch(url, json={"client_secret": "x"}, headers=auth), "validation_error")
    assert client.get(url, headers=auth).json() == renamed.json()

    changed = client.patch(
        url,
        json={
            "grant_types": ["client_credentials"],
            "logo_uri": None,
            "token_endpoint_auth_method": "client_secret_post",
        },
        headers=auth,
    ).json()
    assert changed["response_types"] == [] and changed["logo_uri"] is None
    assert changed["token_endpoint_auth_method"] == "client_secret_post"
    missing = client.patch("/admin/clients/no-such-client", json={}, headers=auth)
    refused(missing, "not_found", 404)


def test_builtin_frontend_client_cannot_be_deleted_or_change_auth_method(
    client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    url = f"/admin/clients/{FIRST_PARTY_CLIENT_ID}"
    refused(client.delete(url, headers=auth), "conflict", 409)
    change = {"token_endpoint_auth_method": "client_secret_basic"}
    refused(client.patch(url, json=change, headers=auth), "conflict", 409)
    refused(client.post(f"{url}/secret", headers=auth), "conflict", 409)
    shown = client.get(url, headers=auth).json()
    assert shown["token_endpoint_auth_method"] == "none" and shown["first_party"] is True
    form = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
    assert client.post("/oauth/token", data=form).status_code == 200


# --- C4: rotation; delete -------------------------------------------------------------


def test_c4_rotation_shows_a_new_secret_once_and_the_old_one_fails_at_once(
    app: FastAPI, client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    created = create(client, auth, **BACKEND)
    client_id, old = created["client_id"], created["client_secret"]
    assert_oauth_error(try_secret(client, client_id, old), 400, "invalid_grant")
    wrong = try_secret(client, client_id, old + "x")
    assert_oauth_error(wrong, 401, "invalid_client")
    assert "www-authenticate" in wrong.headers

    rotated = client.post(f"/admin/clients/{client_id}/secret", headers=auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["client_secret"]
    assert new != old and rotated.json()["client_secret_expires_at"] == 0
    assert set(rotated.json()) == INFO_FIELDS | {"client_secret", "client_secret_expires_at"}
    (row,) = [r for r in rows(app) if r.client_id == client_id]
    assert row.secret_digest == hashlib.sha256(new.encode()).hexdigest()

    assert_oauth_error(try_secret(client, client_id, old), 401, "invalid_client")
    assert_oauth_error(try_secret(client, client_id, new), 400, "invalid_grant")
    form = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
    issued = client.post("/oauth/token", data=form, headers=basic_auth(client_id, new))
    assert issued.status_code == 200, issued.text
    shown = client.get(f"/admin/clients/{client_id}", headers=auth)
    assert new not in shown.text and old not in shown.text
    missing = client.post("/admin/clients/no-such-client/secret", headers=auth)
    refused(missing, "not_found", 404)


def test_delete_removes_the_client_and_its_refresh_tokens(
    app: FastAPI, client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    created = create(client, auth, **BACKEND)
    client_id, secret = created["client_id"], created["client_secret"]
    form = {"grant_type": "password", "username": user["email"], "password": PASSWORD}
    tokens = client.post("/oauth/token", data=form, headers=basic_auth(client_id, secret))
    assert tokens.status_code == 200 and tokens.json()["refresh_token"]

    deleted = client.delete(f"/admin/clients/{client_id}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    refused(client.get(f"/admin/clients/{client_id}", headers=auth), "not_found", 404)
    refused(client.delete(f"/admin/clients/{client_id}", headers=auth), "not_found", 404)
    with Session(engine_of(app)) as session:
        left = session.scalars(select(RefreshToken).where(RefreshToken.client_id == client_id))
        assert left.all() == []
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]}
    gone = client.post("/oauth/token", data=refresh, headers=basic_auth(client_id, secret))
    assert_oauth_error(gone, 401, "invalid_client")


def test_openapi_documents_every_client_operation(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for method, path in ROUTES:
        operation = paths[path][method.lower()]
        for status in ("401", "403"):
            content = operation["responses"][status]["content"]
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
        assert operation["security"], (method, path)
    assert "client_secret" not in str(paths["/admin/clients"]["get"]["responses"]["200"])
