"""The password grant never signs an account with a second factor in (M4): after
the right password it answers the documented extension error `mfa_required`
(RFC 6749 §8.5) pointing at the authorization code flow; a wrong password gets
exactly the answer any wrong password gets, and the login throttle still counts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.accounts import PASSWORD, register
from tests.support.oauth_clients import assert_oauth_error, jwt_claims, password_form
from tests.support.oauth_mfa import with_app
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import RefreshToken
from userservice.settings import Settings

ADA = "ada@example.com"  # has an authenticator app
BOB = "bob@example.com"  # password only
# RFC 6749 §5.2: the characters error_description may hold.
DESCRIPTION_CHARS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


def _answer(response: httpx.Response) -> tuple[int, bytes, str | None, str | None]:
    return (
        response.status_code,
        response.content,
        response.headers.get("content-type"),
        response.headers.get("cache-control"),
    )


def _refresh_rows(client: TestClient) -> int:
    assert client.app is not None
    with engine_of(client.app).connect() as conn:  # type: ignore[arg-type]
        return int(conn.scalar(select(func.count()).select_from(RefreshToken)) or 0)


def test_m4_right_password_of_an_mfa_account_gets_mfa_required(client: TestClient) -> None:
    with_app(client, ADA)
    before = _refresh_rows(client)
    response = client.post("/oauth/token", data=password_form(ADA, PASSWORD))
    assert_oauth_error(response, 400, "mfa_required")
    description = response.json()["error_description"]
    assert DESCRIPTION_CHARS.fullmatch(description), description
    assert "authorization code flow" in description and "PKCE" in description
    assert "access_token" not in response.text and "refresh_token" not in response.text
    assert _refresh_rows(client) == before  # nothing was issued


def test_m4_wrong_password_of_an_mfa_account_is_any_wrong_password(client: TestClient) -> None:
    """The same bytes as a wrong password of an account without a factor, and as
    an unknown address: a guesser learns nothing about the factor (M4)."""
    with_app(client, ADA)
    register(client, BOB)
    mfa = client.post("/oauth/token", data=password_form(ADA, "wrong-password-1"))
    plain = client.post("/oauth/token", data=password_form(BOB, "wrong-password-1"))
    unknown = client.post("/oauth/token", data=password_form("eve@example.com", "wrong-1"))
    assert_oauth_error(mfa, 400, "invalid_grant")
    assert _answer(mfa) == _answer(plain) == _answer(unknown)


def test_m4_an_account_without_a_factor_still_gets_tokens(client: TestClient) -> None:
    register(client, BOB)
    response = client.post("/oauth/token", data=password_form(BOB, PASSWORD))
    assert response.status_code == 200, response.text
    claims = jwt_claims(response.json()["access_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:userservice:acr:pwd"


@pytest.fixture
def client_with(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    with ExitStack() as stack:

        def build(**overrides: Any) -> TestClient:
            app = create_app(make_settings(**overrides))
            return stack.enter_context(TestClient(app, base_url="https://testserver"))

        yield build


def test_m4_the_login_throttle_still_applies(client_with: Callable[..., TestClient]) -> None:
    """M4: wrong passwords of an MFA account count like any; past the limit even
    the right password gets 429, not mfa_required (no oracle for the password)."""
    client = client_with(login_limit_per_account="3/minute")
    with_app(client, ADA)
    for _ in range(3):
        wrong = client.post("/oauth/token", data=password_form(ADA, "wrong-password-1"))
        assert_oauth_error(wrong, 400, "invalid_grant")
    for password in ("wrong-password-1", PASSWORD):
        refused = client.post("/oauth/token", data=password_form(ADA, password))
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "slow_down" and refused.headers["retry-after"]
