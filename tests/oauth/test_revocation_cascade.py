"""Revocation reaches every token of a grant, and only those (S5): revoking a refresh
token (RFC 7009 §2.1) or withdrawing consent ends the grant's access tokens at once,
in the bearer check, userinfo and introspection alike; a token issued after a
withdrawal works whatever the timing, even within the same second."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from tests.support.callers import (
    THIRD_PARTY,
    basic_headers,
    third_party_token,
)
from tests.support.oauth_flow import obtain_code, redeem


def _works(client: TestClient, access_token: str) -> bool:
    me = client.get("/users/me", headers=bearer(access_token))
    info = client.get("/oauth/userinfo", headers=bearer(access_token))
    assert (me.status_code == 200) == (info.status_code == 200), (me.text, info.text)
    return me.status_code == 200


def _refresh(client: TestClient, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    response: httpx.Response = client.post("/oauth/token", data={**form, "client_id": THIRD_PARTY})
    return response


def test_revoking_a_refresh_token_ends_its_access_tokens(with_app: TestClient) -> None:
    first = third_party_token(with_app, "openid profile offline_access")
    other = third_party_token(with_app, "openid profile offline_access")
    assert _works(with_app, first["access_token"])
    revoked = with_app.post(
        "/oauth/revoke", data={"token": first["refresh_token"], "client_id": THIRD_PARTY}
    )
    assert revoked.status_code == 200, revoked.text
    assert not _works(with_app, first["access_token"])
    # Another grant of the same user and app is untouched.
    assert _works(with_app, other["access_token"])


def test_a_rotated_family_keeps_working_until_revoked(with_app: TestClient) -> None:
    tokens = third_party_token(with_app, "openid profile offline_access")
    refreshed = _refresh(with_app, tokens["refresh_token"]).json()
    assert _works(with_app, tokens["access_token"])
    assert _works(with_app, refreshed["access_token"])
    # Replaying the retired refresh token kills the family: both access tokens die.
    replay = _refresh(with_app, tokens["refresh_token"])
    assert replay.status_code == 400
    assert not _works(with_app, tokens["access_token"])
    assert not _works(with_app, refreshed["access_token"])


@pytest.mark.parametrize("scope", ["openid profile", "openid profile offline_access"])
def test_reauthorising_in_the_second_of_a_withdrawal_works(
    with_app: TestClient, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    """Withdraw and authorise again within one second of the clock: the old token is
    refused, the new one works (a whole-second comparison used to refuse both)."""
    old = third_party_token(with_app, scope)
    frozen = math.floor(time.time()) + 0.25
    for module in ("userservice.services.consents", "userservice.services.access_tokens"):
        monkeypatch.setattr(f"{module}.time.time", lambda: frozen)
    withdrawn = with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=basic_headers())
    assert withdrawn.status_code == 204, withdrawn.text
    new = third_party_token(with_app, scope)
    assert not _works(with_app, old["access_token"])
    assert _works(with_app, new["access_token"])


def test_a_code_issued_before_a_withdrawal_is_dead_after_it(with_app: TestClient) -> None:
    """A withdrawal ends what the app could still redeem: its unredeemed codes."""
    code, verifier = obtain_code(with_app, THIRD_PARTY, scope="openid profile offline_access")
    withdrawn = with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=basic_headers())
    assert withdrawn.status_code == 204, withdrawn.text
    late = redeem(with_app, code, verifier, THIRD_PARTY)
    assert late.status_code == 400, late.text
    assert late.json()["error"] == "invalid_grant"
