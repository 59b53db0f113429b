"""/admin/clients registration over HTTP, on SQLite and PostgreSQL: the RFC 7591
response, C4 (secret hashed at rest, shown once), A4/A5 (redirect URIs at
registration), the metadata rules, G4 (unknown fields), and no 5xx for bad input."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from tests.support.admin_clients import (
    BACKEND,
    INFO_FIELDS,
    WEB_APP,
    create,
    refused,
    rows,
)


@pytest.fixture
def auth(admin: dict[str, Any]) -> dict[str, str]:
    return bearer(admin["tokens"]["access_token"])


# --- create -------------------------------------------------------------------------


def test_create_returns_rfc7591_information_and_the_secret_once(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post("/admin/clients", json=WEB_APP, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == INFO_FIELDS | {"client_secret", "client_secret_expires_at"}
    assert response.headers["location"] == f"/admin/clients/{body['client_id']}"
    assert response.headers["cache-control"] == "no-store"
    assert len(body["client_id"]) >= 22 and body["client_id"] != WEB_APP["client_name"]
    assert len(body["client_secret"]) >= 43  # 256 bits, URL-safe base64
    assert body["client_secret_expires_at"] == 0
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["first_party"] is False
    assert {k: body[k] for k in WEB_APP} == WEB_APP

    # C4: at rest only the SHA-256 digest; the plaintext is in no column of any row.
    secret = body["client_secret"]
    secret_digest = hashlib.sha256(secret.encode()).hexdigest()
    (row,) = [r for r in rows(app) if r.client_id == body["client_id"]]
    assert row.secret_digest == secret_digest and row.client_type == "confidential"
    assert all(secret not in repr(getattr(r, c.key)) for r in rows(app) for c in r.__mapper__.c)

    # ... and it is never shown again, nor its digest.
    shown = client.get(f"/admin/clients/{body['client_id']}", headers=auth)
    listed = client.get("/admin/clients", headers=auth)
    assert shown.status_code == 200 and listed.status_code == 200
    assert set(shown.json()) == INFO_FIELDS
    assert all(set(item) == INFO_FIELDS for item in listed.json()["items"])
    for text in (shown.text, listed.text):
        assert secret not in text and secret_digest not in text and "digest" not in text
    assert body["client_id"] in {item["client_id"] for item in listed.json()["items"]}


def test_defaults_and_public_clients_have_no_secret(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    minimal = create(client, auth, client_name="Minimal", redirect_uris=["https://a.example/cb"])
    assert minimal["grant_types"] == ["authorization_code"]
    assert minimal["response_types"] == ["code"]
    assert minimal["scope"] == "openid profile email"
    assert minimal["token_endpoint_auth_method"] == "client_secret_basic"
    assert minimal["post_logout_redirect_uris"] == [] and minimal["logo_uri"] is None

    spa = create(client, auth, **WEB_APP, token_endpoint_auth_method="none")
    assert "client_secret" not in spa and "client_secret_expires_at" not in spa
    (row,) = [r for r in rows(app) if r.client_id == spa["client_id"]]
    assert row.secret_digest is None and row.client_type == "public"
    rotate = client.post(f"/admin/clients/{spa['client_id']}/secret", headers=auth)
    refused(rotate, "conflict", 409)


def test_accepted_combinations(client: TestClient, auth: dict[str, str]) -> None:
    machine = create(
        client, auth, client_name="Cron job", grant_types=["client_credentials"], scope="users:read"
    )
    assert machine["response_types"] == [] and machine["redirect_uris"] == []
    full = create(
        client,
        auth,
        **{**WEB_APP, "response_types": ["code"]},
        post_logout_redirect_uris=["https://app.example.com/bye", "http://127.0.0.1/bye"],
        logo_uri="https://app.example.com/logo.png",
        client_uri="https://app.example.com/",
        token_endpoint_auth_method="client_secret_post",
    )
    assert full["post_logout_redirect_uris"][1] == "http://127.0.0.1/bye"
    assert full["logo_uri"] == "https://app.example.com/logo.png"
    first = create(client, auth, **BACKEND)
    assert first["first_party"] is True and first["response_types"] == []


def test_a4_loopback_http_redirects_are_accepted(client: TestClient, auth: dict[str, str]) -> None:
    """RFC 8252 §7.3: native apps register http on a loopback IP literal."""
    uris = [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]/callback",
        "http://[::1]:51234/callback",
    ]
    body = create(client, auth, **{**WEB_APP, "redirect_uris": uris})
    assert body["redirect_uris"] == uris


BAD_REDIRECT_URIS = [
    "https://app.example.com/callback#fragment",
    "https://*.example.com/callback",
    "https://app.example.com/*",
    "javascript:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "http://app.example.com/callback",
    "http://localhost:8080/callback",
    "http://192.168.1.1/callback",
    "https://user@app.example.com/callback",
    "https://app.example.com@evil.example/callback",
    "https://app.example.com/call back",
    "https://app.example.com/callback\r\nLocation: https://evil.example",
    "https://app.example.com/" + "a" * 2000,
    "/relative/callback",
    "com.example.app:/callback",
]


@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
def test_a5_dangerous_redirect_uris_are_422_and_nothing_is_stored(
    app: FastAPI, client: TestClient, auth: dict[str, str], field: str
) -> None:
    before = len(rows(app))
    for uri in BAD_REDIRECT_URIS:
        body = {**WEB_APP, field: ["https://app.example.com/ok", uri]}
        response = client.post("/admin/clients", json=body, headers=auth)
        assert response.status_code == 422, (uri, response.text)
        assert response.json()["code"] == "invalid_redirect_uri", (uri, response.text)
        assert field in response.json()["detail"]
    too_many = [f"https://app.example.com/cb{i}" for i in range(21)]
    refused(
        client.post("/admin/clients", json={**WEB_APP, field: too_many}, headers=auth),
        "invalid_redirect_uri",
    )
    twice = ["https://app.example.com/cb", "https://app.example.com/cb"]
    refused(
        client.post("/admin/clients", json={**WEB_APP, field: twice}, headers=auth),
        "invalid_redirect_uri",
    )
    assert len(rows(app)) == before


BAD_METADATA: list[dict[str, Any]] = [
    {"token_endpoint_auth_method": "private_key_jwt"},
    {"grant_types": ["implicit"]},
    {"grant_types": []},
    {"grant_types": ["authorization_code", "authorization_code"]},
    {"grant_types": ["refresh_token"]},
    {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
    {"grant_types": ["password"]},  # not first-party (C1/C2)
    {"redirect_uris": []},  # authorization_code needs one
    {"response_types": ["token"]},
    {"response_types": ["code", "id_token"]},
    {"response_types": ["code"], "grant_types": ["client_credentials"]},
    {"scope": "openid superuser"},
    {"scope": ""},
    {"scope": "openid  profile"},
    {"scope": "openid openid"},
    {"scope": "openid\tprofile"},
    {"client_name": ""},
    {"client_name": "   "},
    {"client_name": "x" * 201},
    {"client_name": "evil\napp"},
    {"client_name": "Paypal\u202eevil"},  # bidi override (spoofed consent page)
    {"logo_uri": "http://app.example.com/logo.png"},
    {"logo_uri": "javascript:alert(1)"},
    {"client_uri": "data:text/html,hi"},
    {"client_uri": "https://user@app.example.com/"},
    {"grant_types": None},
    {"first_party": None},
]


def test_invalid_metadata_is_422_invalid_client_metadata(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    before = len(rows(app))
    for change in BAD_METADATA:
        response = client.post("/admin/clients", json={**WEB_APP, **change}, headers=auth)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["code"] == "invalid_client_metadata", (change, response.text)
    assert len(rows(app)) == before


@pytest.mark.parametrize(
    "body",
    [
        {**WEB_APP, "client_secret": "chosen-by-me"},  # secrets are ours to make (C4)
        {**WEB_APP, "client_id": "my-own-id"},
        {**WEB_APP, "secret_digest": "0" * 64},
        {**WEB_APP, "redirect_uris": "https://app.example.com/callback"},
        {**WEB_APP, "first_party": "maybe"},
        {**WEB_APP, "client_name": None},
        {"redirect_uris": ["https://app.example.com/callback"]},
        [WEB_APP],
    ],
)
def test_g4_unknown_fields_and_wrong_types_are_422(
    client: TestClient, auth: dict[str, str], body: Any
) -> None:
    refused(client.post("/admin/clients", json=body, headers=auth), "validation_error")


def test_no_server_error_for_garbage(client: TestClient, auth: dict[str, str]) -> None:
    bodies: list[Any] = [
        {**WEB_APP, "client_name": "\ud800"},
        {**WEB_APP, "client_name": "nul\x00name"},
        {**WEB_APP, "redirect_uris": ["https://app.example.com/\ud800"]},
        {**WEB_APP, "redirect_uris": ["https://app.example.com/\x00"]},
        {**WEB_APP, "scope": "openid \x00"},
        {**WEB_APP, "token_endpoint_auth_method": "\ud800"},
        {**WEB_APP, "grant_types": ["\x00"]},
        {**WEB_APP, "redirect_uris": ["http://[:::::::::::::::::::]/cb"]},
        {**WEB_APP, "redirect_uris": ["https://" + "a" * 100_000]},
        {**WEB_APP, "redirect_uris": [["nested"]]},
        None,
        "string",
        12,
    ]
    json_auth = {**auth, "Content-Type": "application/json"}
    for body in bodies:
        # json.dumps escapes lone surrogates as "\ud800", as a hostile client may send.
        response = client.post("/admin/clients", content=json.dumps(body), headers=json_auth)
        assert 400 <= response.status_code < 500, (body, response.text)
    raw = client.post("/admin/clients", content=b"{not json", headers=json_auth)
    assert raw.status_code == 400
    for client_id in ("%00", "%ED%A0%80", "a" * 5000, "..", "%2e%2e%2fusers", "\u00e9", " "):
        for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/secret")):
            body = {"json": {"client_name": "x"}} if method == "PATCH" else {}
            url = f"/admin/clients/{client_id}{suffix}"
            response = client.request(method, url, headers=auth, **body)
            assert response.status_code in (404, 405), (method, url, response.text)
