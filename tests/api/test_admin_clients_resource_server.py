"""/admin/clients and the resource-server mark (S4), on SQLite and PostgreSQL: off by
default, set and taken back by an administrator with effect at /oauth/introspect on
the next call, and refused for public clients (a resource server authenticates)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from tests.support.admin_clients import WEB_APP, create, refused, rows
from tests.support.oauth_clients import basic_auth
from userservice.db.clients import FIRST_PARTY_CLIENT_ID

GATEWAY = {
    "client_name": "API gateway",
    "grant_types": ["client_credentials"],
    "scope": "openid",
}


@pytest.fixture
def auth(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


def introspect(client: TestClient, token: str, client_id: str, secret: str) -> httpx.Response:
    return client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(client_id, secret)
    )


def test_s4_clients_are_not_resource_servers_unless_an_admin_says_so(
    client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    created = create(client, auth, **GATEWAY)
    assert created["resource_server"] is False
    assert create(client, auth, **WEB_APP)["resource_server"] is False
    listed = client.get("/admin/clients", headers=auth).json()["items"]
    assert all(item["resource_server"] is False for item in listed)
    access = user["tokens"]["access_token"]
    seen = introspect(client, access, created["client_id"], created["client_secret"])
    assert seen.json() == {"active": False}


def test_s4_an_admin_marks_and_unmarks_a_resource_server(
    app: FastAPI, client: TestClient, auth: dict[str, str], user: dict[str, Any]
) -> None:
    created = create(client, auth, **GATEWAY, resource_server=True)
    assert created["resource_server"] is True
    client_id, secret = created["client_id"], created["client_secret"]
    url = f"/admin/clients/{client_id}"
    assert client.get(url, headers=auth).json()["resource_server"] is True
    (row,) = [r for r in rows(app) if r.client_id == client_id]
    assert row.is_resource_server is True

    access = user["tokens"]["access_token"]
    seen = introspect(client, access, client_id, secret).json()
    assert seen["active"] is True and seen["sub"] == user["id"]

    # Other changes leave the mark as it is.
    renamed = client.patch(url, json={"client_name": "Gateway"}, headers=auth)
    assert renamed.status_code == 200 and renamed.json()["resource_server"] is True

    unmarked = client.patch(url, json={"resource_server": False}, headers=auth)
    assert unmarked.status_code == 200, unmarked.text
    assert unmarked.json() == {**renamed.json(), "resource_server": False}
    assert introspect(client, access, client_id, secret).json() == {"active": False}

    marked = client.patch(url, json={"resource_server": True}, headers=auth)
    assert marked.status_code == 200 and marked.json()["resource_server"] is True
    assert introspect(client, access, client_id, secret).json()["active"] is True


def test_s4_a_public_client_cannot_be_a_resource_server(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    before = len(rows(app))
    public = {**WEB_APP, "token_endpoint_auth_method": "none", "resource_server": True}
    refused(client.post("/admin/clients", json=public, headers=auth), "invalid_client_metadata")
    assert len(rows(app)) == before

    spa = create(client, auth, **WEB_APP, token_endpoint_auth_method="none")
    for client_id in (spa["client_id"], FIRST_PARTY_CLIENT_ID):
        url = f"/admin/clients/{client_id}"
        shown = client.get(url, headers=auth).json()
        patched = client.patch(url, json={"resource_server": True}, headers=auth)
        refused(patched, "invalid_client_metadata")
        assert client.get(url, headers=auth).json() == shown
    assert not any(row.is_resource_server for row in rows(app))

    for bad in ({"resource_server": None}, {"resource_server": "maybe"}):
        response = client.post("/admin/clients", json={**GATEWAY, **bad}, headers=auth)
        assert response.status_code == 422, (bad, response.text)
    assert len(rows(app)) == before + 1
