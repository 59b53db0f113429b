"""HTTP Basic and second factors (M4): the password alone never signs an account
with a factor in. The right password gets `mfa_required` with RFC 9470's challenge
naming the acr to reach; a wrong one gets exactly what any wrong password gets."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.callers import first_party_headers
from tests.support.factor_api import enrol
from tests.support.factors import verified
from tests.support.oauth_clients import user_basic
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem

PLAIN = "plain@example.com"
# Headers that differ between any two responses, whatever they answer.
VOLATILE = {"date", "x-request-id"}


def _enrolled(client: TestClient, app: FastAPI) -> None:
    register(client, EMAIL)
    register(client, PLAIN)
    verified(app, EMAIL)
    enrol(client, first_party_headers(client))


def _shape(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    return response.status_code, response.content, headers


def test_m4_the_right_password_gets_mfa_required_and_the_challenge(
    client: TestClient, app: FastAPI
) -> None:
    _enrolled(client, app)
    refused = client.get("/users/me", headers=user_basic(EMAIL, "correct horse battery staple"))
    assert refused.status_code == 401, refused.text
    body = assert_problem(refused)
    assert body["code"] == "mfa_required"
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:userservice:acr:mfa"' in challenge
    assert "error_description=" in challenge
    # Basic cannot meet it: it is not offered again.
    assert "Basic" not in challenge
    assert "no-store" in refused.headers["cache-control"]


def test_m4_a_wrong_password_is_answered_as_for_any_account(
    client: TestClient, app: FastAPI
) -> None:
    _enrolled(client, app)
    with_factor = client.get("/users/me", headers=user_basic(EMAIL, "wrong password!"))
    without = client.get("/users/me", headers=user_basic(PLAIN, "wrong password!"))
    unknown = client.get("/users/me", headers=user_basic("nobody@example.com", "wrong password!"))
    assert with_factor.status_code == 401
    assert assert_problem(with_factor)["code"] != "mfa_required"
    assert _shape(with_factor) == _shape(without) == _shape(unknown)
