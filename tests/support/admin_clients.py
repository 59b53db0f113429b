"""Shared pieces of the /admin/clients tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.oauth_clients import basic_auth
from tests.support.wiring import engine_of
from userservice.db.models import OAuthClient

WEB_APP = {
    "client_name": "Example web app",
    "redirect_uris": ["https://app.example.com/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile email offline_access",
}
# Confidential and first-party, so that its secret can be tried at /oauth/token.
BACKEND = {
    "client_name": "First-party backend",
    "grant_types": ["password", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "first_party": True,
}
INFO_FIELDS = {
    "client_id",
    "client_id_issued_at",
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "logo_uri",
    "client_uri",
    "first_party",
    "resource_server",
}
ROUTES = {
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients"),
    ("GET", "/admin/clients/{client_id}"),
    ("PATCH", "/admin/clients/{client_id}"),
    ("POST", "/admin/clients/{client_id}/secret"),
    ("DELETE", "/admin/clients/{client_id}"),
}


def create(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/admin/clients", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def refused(response: httpx.Response, code: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code, response.text


def rows(app: FastAPI) -> list[OAuthClient]:
    with Session(engine_of(app)) as session:
        return list(session.scalars(select(OAuthClient)))


def try_secret(client: TestClient, client_id: str, secret: str) -> httpx.Response:
    """A refresh with a bogus token: 401 invalid_client when the client fails to
    authenticate, 400 invalid_grant once it has (the token is checked second)."""
    form = {"grant_type": "refresh_token", "refresh_token": "bogus-refresh-token"}
    return client.post("/oauth/token", data=form, headers=basic_auth(client_id, secret))
