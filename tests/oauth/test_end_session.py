"""RP-initiated logout at end_session_endpoint (OIDC RP-Initiated Logout 1.0; F4, A2)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.oauth_flow import hidden, signed_in
from tests.support.wiring import engine_of
from userservice.db.models import OAuthClient

AFTER = "https://rp.example/signed-out"


def _setup(app: FastAPI, client: TestClient) -> None:
    with Session(engine_of(app)) as session, session.begin():
        session.add(
            OAuthClient(
                client_id="rp",
                client_name="RP",
                client_type="public",
                secret_digest=None,
                token_endpoint_auth_method="none",
                redirect_uris=["https://rp.example/cb"],
                post_logout_redirect_uris=[AFTER],
                grant_types=["authorization_code"],
                response_types=["code"],
                scope="openid",
                is_first_party=False,
                extra={},
            )
        )
    signed_in(client)
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_logout_confirms_then_returns_to_the_registered_uri(
    app: FastAPI, client: TestClient
) -> None:
    _setup(app, client)
    query = urlencode({"client_id": "rp", "post_logout_redirect_uri": AFTER, "state": "s1"})
    confirm = client.get(f"/oauth/logout?{query}", follow_redirects=False)
    assert confirm.status_code == 200 and "ada@example.com" in confirm.text
    # F4: showing the page signed nobody out.
    assert client.get("/account", follow_redirects=False).status_code == 200
    done = client.post(
        f"/oauth/logout?{query}",
        data={"csrf_token": hidden(confirm.text, "csrf_token")},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{AFTER}?state=s1"
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_unregistered_return_uri_is_an_error_page(app: FastAPI, client: TestClient) -> None:
    """No open redirect: the URI must be registered for that client."""
    _setup(app, client)
    for target in ("https://evil.example/", AFTER + "/x", AFTER.upper()):
        query = urlencode({"client_id": "rp", "post_logout_redirect_uri": target})
        response = client.get(f"/oauth/logout?{query}", follow_redirects=False)
        assert response.status_code == 400 and "location" not in response.headers
    bad_hint = client.get("/oauth/logout?id_token_hint=a.b.c", follow_redirects=False)
    assert bad_hint.status_code == 400


def test_logout_post_without_csrf_is_refused(app: FastAPI, client: TestClient) -> None:
    _setup(app, client)
    refused = client.post("/oauth/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_discovery_names_the_end_session_endpoint(client: TestClient) -> None:
    meta = client.get("/.well-known/openid-configuration").json()
    assert meta["end_session_endpoint"] == "https://testserver/oauth/logout"
