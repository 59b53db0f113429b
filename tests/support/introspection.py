"""RFC 7662 introspection from a test: a resource server an administrator marked
(S4), and the call it makes."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.oauth_clients import SECRET, add_client, basic_auth
from userservice.services.client_metadata import ClientChanges
from userservice.wiring import wired


def introspect(client: TestClient, token: str, client_id: str = "backend") -> httpx.Response:
    return client.post(
        "/oauth/introspect", data={"token": token}, headers=basic_auth(client_id, SECRET)
    )


def resource_server(app: FastAPI, client_id: str = "gateway", *, on: bool = True) -> str:
    """A confidential client that an administrator marks as a resource server."""
    if on and client_id not in {c.client_id for c in wired(app).clients.list()}:
        add_client(
            app,
            client_id,
            secret=SECRET,
            auth_method="client_secret_basic",
            grant_types=("client_credentials",),
            scope="openid",
        )
    wired(app).clients.update(client_id, ClientChanges(resource_server=on))
    return client_id
