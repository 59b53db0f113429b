"""OAuth clients for tests: registrations inserted straight into the app's database,
the credentials and token requests a client sends, and reading what the server
answers (OAuth errors, a JWT's claims and key id)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.support.accounts import PASSWORD
from tests.support.wiring import engine_of
from userservice.db.models import OAuthClient, RefreshToken, User
from userservice.security.secrets import digest

EMAIL = "ada@example.com"
FIRST_PARTY_SCOPES = (
    "openid profile profile:write email offline_access users:read users:write admin"
)
SECRET = "s3cret-for-tests-only-0123456789abcdef"


def add_client(
    app: FastAPI,
    client_id: str,
    *,
    secret: str | None = None,
    auth_method: str = "none",
    grant_types: Sequence[str] = ("password", "refresh_token"),
    scope: str = FIRST_PARTY_SCOPES,
    first_party: bool = False,
) -> str:
    """Register a client; a secret is stored only as its SHA-256 digest, as the
    service itself does (C4)."""
    engine = engine_of(app)
    with Session(engine) as session, session.begin():
        session.add(
            OAuthClient(
                client_id=client_id,
                client_name=f"test client {client_id}",
                client_type="confidential" if secret else "public",
                secret_digest=digest(secret) if secret else None,
                token_endpoint_auth_method=auth_method,
                redirect_uris=[],
                post_logout_redirect_uris=[],
                grant_types=list(grant_types),
                response_types=[],
                scope=scope,
                is_first_party=first_party,
                extra={},
            )
        )
    return client_id


def confidential_third_party(
    app: FastAPI, client_id: str = "third-party-app", method: str = "client_secret_basic"
) -> str:
    """A third-party app that (wrongly, for the test) lists `password` among its grants."""
    return add_client(
        app,
        client_id,
        secret=SECRET,
        auth_method=method,
        grant_types=("password", "authorization_code", "refresh_token"),
        scope="openid profile email offline_access",
    )


def confidential_first_party(
    app: FastAPI, client_id: str = "first-party-backend", method: str = "client_secret_basic"
) -> str:
    return add_client(app, client_id, secret=SECRET, auth_method=method, first_party=True)


def public_first_party(
    app: FastAPI,
    client_id: str = "second-frontend",
    *,
    grant_types: Sequence[str] = ("password", "refresh_token"),
    scope: str = FIRST_PARTY_SCOPES,
) -> str:
    return add_client(app, client_id, grant_types=grant_types, scope=scope, first_party=True)


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, then base64'd."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def set_refresh_times(
    app: FastAPI,
    token: str,
    *,
    issued_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> None:
    """Move a stored refresh token's clock (it is found by its digest)."""
    values: dict[str, dt.datetime] = {}
    if issued_at is not None:
        values["issued_at"] = issued_at
    if expires_at is not None:
        values["expires_at"] = expires_at
    engine = engine_of(app)
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(RefreshToken).where(RefreshToken.digest == digest(token)).values(**values)
        )
        assert getattr(result, "rowcount", 0) == 1


def set_user(app: FastAPI, email: str = EMAIL, **values: Any) -> None:
    """Change a user's row directly (disable it, move its revocation mark)."""
    engine = engine_of(app)
    with Session(engine) as session, session.begin():
        session.execute(update(User).where(User.email == email).values(**values))


def refresh_row(app: FastAPI, token: str) -> RefreshToken | None:
    engine = engine_of(app)
    with Session(engine, expire_on_commit=False) as session:
        row = session.scalars(select(RefreshToken).where(RefreshToken.digest == digest(token)))
        return row.first()


def refresh(client: TestClient, token: str, **extra: str) -> httpx.Response:
    """The refresh_token grant, as a client sends it (RFC 6749 §6)."""
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    response: httpx.Response = client.post("/oauth/token", data=form)
    return response


def password_form(email: str = EMAIL, password: str = PASSWORD, **extra: str) -> dict[str, str]:
    return {"grant_type": "password", "username": email, "password": password, **extra}


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """C11: RFC 6749 §5.2 errors are exactly {error, error_description}, never cached."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"


def user_basic(email: str, password: str) -> dict[str, str]:
    """A user's own Basic credentials (RFC 7617: UTF-8, not form-encoded)."""
    raw = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def jwt_claims(token: str) -> dict[str, Any]:
    """The unverified payload of a JWT, to read what the server put in it."""
    return _jwt_part(token, 1)


def kid_of(token: str) -> str:
    """The key id in a JWT's unverified header: which signing key the server used."""
    kid: str = _jwt_part(token, 0)["kid"]
    return kid


def add_service_client(app: FastAPI, *, scope: str, client_id: str = "reporting") -> None:
    """A confidential client acting for itself (client_credentials, Basic auth)."""
    add_client(
        app,
        client_id,
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("client_credentials",),
        scope=scope,
    )
