"""Helpers for the authorization-code tests: client rows, a signed-in browser
session on the TestClient (https://testserver), authorize URLs with PKCE S256,
consent, and code redemption."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from html import unescape
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.accounts import PASSWORD, register
from tests.support.wiring import engine_of
from userservice.db.models import OAuthClient
from userservice.security.secrets import digest

EMAIL = "ada@example.com"
REDIRECT = "https://app.example/callback"
SECRET = "app-secret-0123456789abcdefghijklmnop"
APP_SCOPE = "openid profile email offline_access"


def add_app(
    client: TestClient,
    client_id: str = "photo-app",
    *,
    redirect_uris: Sequence[str] = (REDIRECT,),
    confidential: bool = False,
    first_party: bool = False,
    name: str = "Photo App",
    scope: str = APP_SCOPE,
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
) -> str:
    """A client allowed the code flow; public (auth method `none`) unless confidential."""
    app = cast(FastAPI, client.app)
    engine = engine_of(app)
    with Session(engine) as session, session.begin():
        session.add(
            OAuthClient(
                client_id=client_id,
                client_name=name,
                client_type="confidential" if confidential else "public",
                secret_digest=digest(SECRET) if confidential else None,
                token_endpoint_auth_method="client_secret_basic" if confidential else "none",
                redirect_uris=list(redirect_uris),
                post_logout_redirect_uris=[],
                grant_types=list(grant_types),
                response_types=["code"],
                scope=scope,
                is_first_party=first_party,
                extra={},
            )
        )
    return client_id


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge_of(verifier)


def challenge_of(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def authorize_url(
    client_id: str = "photo-app",
    *,
    challenge: str | None = None,
    omit: Sequence[str] = (),
    **params: str,
) -> str:
    """/oauth/authorize with response_type=code, S256 PKCE, state and scope openid;
    keyword arguments add or replace parameters, `omit` drops some."""
    values: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": challenge if challenge is not None else pkce()[1],
        "code_challenge_method": "S256",
    }
    values.update(params)
    return "/oauth/authorize?" + urlencode({k: v for k, v in values.items() if k not in omit})


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} in page"
    return unescape(match.group(1))


def sign_in(
    client: TestClient, next_path: str | None = None, *, email: str = EMAIL
) -> httpx.Response:
    """The login form as a browser fills it in; returns the 303 of POST /login."""
    page = client.get("/login", params={"next": next_path} if next_path else None)
    assert page.status_code == 200, page.text
    form = {"email": email, "password": PASSWORD, "csrf_token": hidden(page.text, "csrf_token")}
    if next_path:
        form["next"] = hidden(page.text, "next")
    response: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def login_via(client: TestClient, login_location: str) -> httpx.Response:
    """Open the /login page a redirect pointed at and sign in with its hidden fields."""
    page = client.get(login_location)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text
    form = {
        "email": EMAIL,
        "password": PASSWORD,
        "csrf_token": hidden(page.text, "csrf_token"),
        "next": hidden(page.text, "next"),
    }
    response: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    return response


def signed_in(client: TestClient) -> TestClient:
    """Register the user and give the TestClient a browser session."""
    register(client, EMAIL, display_name="Ada")
    sign_in(client)
    return client


def get(client: TestClient, url: str, **kwargs: Any) -> httpx.Response:
    response: httpx.Response = client.get(url, follow_redirects=False, **kwargs)
    return response


def decide(client: TestClient, url: str, allow: bool = True) -> httpx.Response:
    """GET the consent page at `url` and press Allow or Deny; the POST's response."""
    page = get(client, url)
    assert page.status_code == 200 and "Allow" in page.text, page.text
    response: httpx.Response = client.post(
        url,
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "decision": "allow" if allow else "deny",
        },
        follow_redirects=False,
    )
    return response


def query(location: str) -> dict[str, str]:
    """The single-valued query parameters of a redirect back to the client."""
    parsed = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), location
    return {k: v[0] for k, v in parsed.items()}


def obtain_code(client: TestClient, client_id: str = "photo-app", **params: str) -> tuple[str, str]:
    """(code, verifier) for a signed-in session, consenting when asked."""
    verifier, challenge = pkce()
    url = authorize_url(client_id, challenge=challenge, **params)
    response = get(client, url)
    if response.status_code == 200:
        response = decide(client, url)
    assert response.status_code in (302, 303), response.text
    back = query(response.headers["location"])
    assert "code" in back, response.headers["location"]
    return back["code"], verifier


def redeem(
    client: httpx.Client | TestClient,
    code: str,
    verifier: str | None,
    client_id: str = "photo-app",
    *,
    redirect_uri: str | None = REDIRECT,
    secret: str | None = None,
    **extra: str,
) -> httpx.Response:
    """POST /oauth/token with grant_type=authorization_code; a public client sends
    its client_id, a confidential one Basic credentials."""
    form = {"grant_type": "authorization_code", "code": code, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    headers = {}
    if secret is None:
        form["client_id"] = client_id
    else:
        raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {raw}"
    response: httpx.Response = client.post("/oauth/token", data=form, headers=headers)
    return response


def assert_error_page(response: httpx.Response) -> None:
    """Our own HTML error page: 400, no redirect anywhere (A1, A2)."""
    assert response.status_code == 400, (response.status_code, response.headers)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_token_error(response: httpx.Response, *errors: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] in errors, response.text
    assert "access_token" not in response.text
