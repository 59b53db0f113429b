"""The authorization-code flow end to end, driven the way a third-party app does
it: Authlib's OAuth2 client with PKCE against a real uvicorn over TLS, a browser
session that signs in and consents, and ID-token validation against our JWKS."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trustme
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from tests.support.accounts import PASSWORD
from tests.support.oauth_flow import REDIRECT, SECRET, hidden
from tests.support.server import running_server
from userservice.cli import main as cli_main
from userservice.db.models import OAuthClient
from userservice.security.secrets import digest
from userservice.settings import Settings


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = (tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


@pytest.fixture
def server(
    settings: Settings, tls: tuple[Path, Path, Path]
) -> Iterator[tuple[str, ssl.SSLContext]]:
    """The base URL and a client context trusting only the test CA (httpx deprecates
    `verify=<path>`)."""
    ca, cert, key = tls
    with running_server(settings, cert=cert, key=key) as base:
        yield base, ssl.create_default_context(cafile=str(ca))


def _register_app(settings: Settings, engine_url: str) -> None:
    from userservice.db.engine import build_engine

    engine = build_engine(engine_url)
    with Session(engine) as session, session.begin():
        session.add(
            OAuthClient(
                client_id="photo-app",
                client_name="Photo App",
                client_type="confidential",
                secret_digest=digest(SECRET),
                token_endpoint_auth_method="client_secret_basic",
                redirect_uris=[REDIRECT],
                post_logout_redirect_uris=[],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                scope="openid profile email offline_access",
                is_first_party=False,
                extra={},
            )
        )
    engine.dispose()


def _browser_signs_in_and_consents(browser: httpx.Client, authorize_url: str, allow: bool) -> str:
    """What a person's browser does; returns the redirect back to the app."""
    first = browser.get(authorize_url)
    assert first.status_code == 303 and first.headers["location"].startswith("/login")
    form = browser.get(first.headers["location"])
    csrf = hidden(form.text, "csrf_token")
    signed_in = browser.post(
        "/login",
        data={
            "email": "ada@example.com",
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": hidden(form.text, "next"),
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    consent = browser.get(signed_in.headers["location"])
    assert consent.status_code == 200, consent.text
    assert "Photo App" in consent.text
    decision = browser.post(
        signed_in.headers["location"],
        data={
            "csrf_token": hidden(consent.text, "csrf_token"),
            "decision": "allow" if allow else "deny",
        },
    )
    assert decision.status_code in (302, 303), decision.text
    return decision.headers["location"]


def _register_with_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """As README says: `userservice clients create …` prints the id and the secret."""
    monkeypatch.setenv("USERSERVICE_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("USERSERVICE_ENV_FILE", "/dev/null")
    capsys.readouterr()
    code = cli_main(
        [
            "clients",
            "create",
            "--name",
            "Photo App",
            "--redirect-uri",
            REDIRECT,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid profile email offline_access",
        ]
    )
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    return created["client_id"], created["client_secret"]


def test_third_party_app_runs_code_flow_with_pkce_and_oidc(
    server: tuple[str, ssl.SSLContext],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A third-party web app end to end: registered with the CLI; code + PKCE through
    our pages; the ID token validated by Authlib's OIDC claims; /users/me and
    /oauth/userinfo; refresh; revoke."""
    base, ca = server
    client_id, client_secret = _register_with_cli(settings, monkeypatch, capsys)
    with httpx.Client(base_url=base, verify=ca) as api:
        created = api.post(
            "/users", json={"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
        )
        assert created.status_code == 201
    app = OAuth2Client(
        client_id,
        client_secret,
        scope="openid profile email offline_access",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        verify=ca,
    )
    verifier = "v" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
    url, state = app.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=verifier, nonce="n-0S6_WzA2Mj"
    )
    with httpx.Client(base_url=base, verify=ca) as browser:
        back = _browser_signs_in_and_consents(browser, url, allow=True)
    query = parse_qs(urlsplit(back).query)
    assert back.startswith(REDIRECT)
    assert query["state"] == [state] and query["iss"] == [settings.issuer]  # RFC 9207
    token = app.fetch_token(
        f"{base}/oauth/token", authorization_response=back, code_verifier=verifier
    )
    assert {"access_token", "refresh_token", "id_token"} <= set(token)

    with httpx.Client(base_url=base, verify=ca) as api:
        jwks = KeySet.import_key_set(api.get("/oauth/jwks").json())
        me = api.get("/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": settings.issuer},
            "aud": {"essential": True, "value": client_id},
        },
        params={"nonce": "n-0S6_WzA2Mj", "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    assert claims["iss"] == settings.issuer and claims["aud"] == client_id
    assert claims["sub"] == me.json()["id"] and claims["email"] == "ada@example.com"

    info = app.get(f"{base}/oauth/userinfo")
    assert info.status_code == 200 and info.json()["email"] == "ada@example.com"

    refreshed: dict[str, Any] = app.refresh_token(
        f"{base}/oauth/token", refresh_token=token["refresh_token"]
    )
    assert refreshed["access_token"] != token["access_token"]
    revoked = app.revoke_token(f"{base}/oauth/revoke", token=refreshed["refresh_token"])
    assert revoked.status_code == 200
    with pytest.raises(OAuthError) as refused:
        app.refresh_token(f"{base}/oauth/token", refresh_token=refreshed["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_deny_sends_access_denied_back_to_the_app(
    server: tuple[str, ssl.SSLContext], settings: Settings
) -> None:
    base, ca = server
    _register_app(settings, settings.resolved_database_url())
    with httpx.Client(base_url=base, verify=ca) as api:
        api.post("/users", json={"email": "ada@example.com", "password": PASSWORD})
    app = OAuth2Client(
        "photo-app",
        SECRET,
        scope="openid",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        verify=ca,
    )
    url, state = app.create_authorization_url(f"{base}/oauth/authorize", code_verifier="x" * 50)
    with httpx.Client(base_url=base, verify=ca) as browser:
        back = _browser_signs_in_and_consents(browser, url, allow=False)
    query = parse_qs(urlsplit(back).query)
    assert query["error"] == ["access_denied"] and query["state"] == [state]
    assert "code" not in query
