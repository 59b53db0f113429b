"""The ways in by mail through the JSON API, as a frontend with its own UI drives
them: a standard HTTP client (httpx) verifying TLS against a real uvicorn, the mails
delivered over SMTP to a real server on loopback, their tokens taken from the links.
On SQLite and PostgreSQL."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.deployment import Deployment, deployed

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different tune on the old violin"
EMAIL = "api-walker@example.com"


@pytest.fixture
def deployment(db_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(db_url, tmp_path) as running:
        yield running


@pytest.fixture
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(deployment.ca))
    with httpx.Client(base_url=deployment.base, verify=context, timeout=20) as client:
        yield client


def _token(deployment: Deployment, count: int, path: str) -> str:
    link = deployment.link(deployment.mail(count, EMAIL), path)
    return parse_qs(urlsplit(link).query)["token"][0]


def _password_grant(http: httpx.Client, password: str) -> httpx.Response:
    return http.post(
        "/oauth/token", data={"grant_type": "password", "username": EMAIL, "password": password}
    )


def test_sign_up_verify_and_reset_by_api_with_mail_over_smtp(
    deployment: Deployment, http: httpx.Client
) -> None:
    created = http.post("/users", json={"email": EMAIL, "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert created.json()["email_verified"] is False

    confirmed = http.post(
        "/users/verification/confirm", json={"token": _token(deployment, 1, "/verify-email")}
    )
    assert confirmed.status_code == 204, confirmed.text
    tokens = _password_grant(http, PASSWORD).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = http.get("/users/me", headers=bearer)
    assert me.status_code == 200 and me.json()["email_verified"] is True, me.text

    # A frontend cannot tell from the answer whether the address has an account.
    asked = http.post("/users/password-reset", json={"email": EMAIL})
    unknown = http.post("/users/password-reset", json={"email": "nobody@example.com"})
    assert asked.status_code == unknown.status_code == 202
    assert asked.content == unknown.content

    reset = _token(deployment, 2, "/reset-password")
    done = http.post(
        "/users/password-reset/confirm", json={"token": reset, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    notice = deployment.mail(3, EMAIL)
    assert "/reset-password" not in notice.text  # a notice, not another link

    # Every token issued before the reset is dead; the old password too.
    assert http.get("/users/me", headers=bearer).status_code == 401
    refreshed = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert _password_grant(http, PASSWORD).status_code == 400
    assert _password_grant(http, NEW_PASSWORD).status_code == 200

    # The link is single-use: a second confirm changes nothing.
    again = http.post(
        "/users/password-reset/confirm", json={"token": reset, "password": "third tune at noon"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"
    assert again.headers["content-type"].startswith("application/problem+json")
    assert _password_grant(http, NEW_PASSWORD).status_code == 200
