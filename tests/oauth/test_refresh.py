"""Refresh-token rotation, reuse detection, binding, expiry and RFC 7009 revocation
(C5-C9)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.oauth_clients import (
    EMAIL,
    SECRET,
    assert_oauth_error,
    basic_auth,
    confidential_first_party,
    jwt_claims,
    public_first_party,
    refresh,
    refresh_row,
    set_refresh_times,
    set_user,
)
from tests.support.server import running_server
from userservice.settings import Settings


def revoke(client: TestClient, token: str | None, **extra: str) -> httpx.Response:
    form = {"token": token} if token is not None else {}
    response: httpx.Response = client.post("/oauth/revoke", data={**form, **extra})
    return response


def assert_invalid_grant(response: httpx.Response) -> None:
    assert_oauth_error(response, 400, "invalid_grant")


def test_refresh_rotates_to_a_new_token_pair(client: TestClient, user: dict[str, Any]) -> None:
    """C5/C11: a refresh returns a new access and refresh token, no-store."""
    rt1 = user["tokens"]["refresh_token"]
    response = refresh(client, rt1)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] != rt1
    assert body["scope"] == user["tokens"]["scope"]
    assert client.get("/users/me", headers=bearer(body["access_token"])).status_code == 200
    assert refresh(client, body["refresh_token"]).status_code == 200


def test_replaying_a_used_refresh_token_revokes_the_whole_family(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C5: RT1 -> RT2; replaying RT1 is invalid_grant and kills RT2 too."""
    rt1 = user["tokens"]["refresh_token"]
    rt2 = refresh(client, rt1).json()["refresh_token"]
    assert_invalid_grant(refresh(client, rt1))
    assert_invalid_grant(refresh(client, rt2))
    # Another login (another family) is untouched.
    assert refresh(client, login(client, EMAIL)["refresh_token"]).status_code == 200


def test_parallel_refreshes_of_one_token_yield_at_most_one_success(settings: Settings) -> None:
    """C6: 20 concurrent refreshes with one token against a real uvicorn server ->
    at most one 200, the rest 400 invalid_grant, no 5xx and no deadlock."""
    with running_server(settings) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            created = http.post("/users", json={"email": EMAIL, "password": PASSWORD})
            assert created.status_code == 201, created.text
            form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
            token = http.post("/oauth/token", data=form).json()["refresh_token"]
        barrier = threading.Barrier(20)
        results: list[tuple[int, str]] = []
        lock = threading.Lock()

        def attempt() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                barrier.wait()
                response = http.post(
                    "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token}
                )
                with lock:
                    results.append((response.status_code, response.text))

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "refreshes hung"
    statuses = Counter(status for status, _ in results)
    assert sum(statuses.values()) == 20
    assert statuses[200] <= 1, results
    assert statuses[400] == 20 - statuses[200], results
    assert all('"invalid_grant"' in text for status, text in results if status == 400)


def test_refresh_token_is_bound_to_its_client(app: FastAPI, client: TestClient) -> None:
    """C7: client B presenting client A's refresh token -> invalid_grant, and the
    failed attempt does not burn the token for A."""
    register(client, EMAIL)
    public_first_party(app, "frontend-b")
    rt_a = login(client, EMAIL)["refresh_token"]
    assert_invalid_grant(refresh(client, rt_a, client_id="frontend-b"))
    assert refresh(client, rt_a).status_code == 200


def test_confidential_client_refresh_needs_its_secret(app: FastAPI, client: TestClient) -> None:
    """C3/C7: a confidential client's token is refreshed only with its own secret."""
    register(client, EMAIL)
    confidential_first_party(app, "backend")
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    issued = client.post("/oauth/token", data=form, headers=basic_auth("backend", SECRET))
    assert issued.status_code == 200, issued.text
    rt = issued.json()["refresh_token"]
    no_secret = refresh(client, rt, client_id="backend")
    assert no_secret.status_code == 401
    assert no_secret.json()["error"] == "invalid_client"
    assert "www-authenticate" in no_secret.headers
    assert_invalid_grant(refresh(client, rt))  # the built-in public client is not "backend"
    again = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": rt},
        headers=basic_auth("backend", SECRET),
    )
    assert again.status_code == 200, again.text


def test_refresh_cannot_widen_scope_but_may_narrow_it(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C7/C13: a wider scope is invalid_scope (and does not burn the token); a
    narrower one is granted."""
    rt = login(client, EMAIL, scope="openid profile")["refresh_token"]
    wider = refresh(client, rt, scope="openid profile email")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    narrower = refresh(client, rt, scope="openid")
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "openid"


def _days_ago(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


def test_refresh_token_past_absolute_expiry_is_invalid_grant(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C8: absolute expiry (the family's end) is enforced."""
    rt = user["tokens"]["refresh_token"]
    set_refresh_times(app, rt, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert_invalid_grant(refresh(client, rt))


def test_idle_refresh_token_is_invalid_grant(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C8: a token unused for longer than the idle lifetime (14 days) is refused,
    even though the family's absolute lifetime has not ended."""
    rt = user["tokens"]["refresh_token"]
    set_refresh_times(app, rt, issued_at=_days_ago(15))
    row = refresh_row(app, rt)
    assert row is not None and row.expires_at.replace(tzinfo=dt.UTC) > _days_ago(0)
    assert_invalid_grant(refresh(client, rt))
    fresh = login(client, EMAIL)["refresh_token"]
    set_refresh_times(app, fresh, issued_at=_days_ago(13))
    assert refresh(client, fresh).status_code == 200


def test_password_change_revokes_refresh_tokens(client: TestClient, user: dict[str, Any]) -> None:
    """C8/E7: a password change revokes every refresh token issued before it."""
    rt = user["tokens"]["refresh_token"]
    other_rt = login(client, EMAIL)["refresh_token"]
    changed = client.patch(
        "/users/me",
        json={"password": "a brand new passphrase 42", "current_password": PASSWORD},
        headers=bearer(user["tokens"]["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    assert_invalid_grant(refresh(client, rt))
    assert_invalid_grant(refresh(client, other_rt))
    assert login(client, EMAIL, password="a brand new passphrase 42")["refresh_token"]


def test_revoking_own_refresh_token_stops_it(client: TestClient, user: dict[str, Any]) -> None:
    """C9: RFC 7009 - 200, no-store, and the token no longer refreshes."""
    rt = user["tokens"]["refresh_token"]
    response = revoke(client, rt)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert_invalid_grant(refresh(client, rt))


def test_revoking_a_retired_token_revokes_its_family(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C9/C5: revoking any member of a family ends the live one too."""
    rt1 = user["tokens"]["refresh_token"]
    rt2 = refresh(client, rt1).json()["refresh_token"]
    assert revoke(client, rt1, token_type_hint="refresh_token").status_code == 200
    assert_invalid_grant(refresh(client, rt2))


def test_revoking_unknown_token_answers_200(client: TestClient, user: dict[str, Any]) -> None:
    """C9: RFC 7009 §2.2 - an unknown token is answered like success."""
    assert revoke(client, "no-such-token-" + "x" * 30).status_code == 200
    assert refresh(client, user["tokens"]["refresh_token"]).status_code == 200


def test_revoking_another_clients_token_answers_200_but_keeps_it(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    """C9: a client may revoke only its own tokens; the answer does not tell."""
    public_first_party(app, "frontend-b")
    rt = user["tokens"]["refresh_token"]
    assert revoke(client, rt, client_id="frontend-b").status_code == 200
    assert refresh(client, rt).status_code == 200


def test_revoke_with_wrong_client_secret_is_401(app: FastAPI, client: TestClient) -> None:
    """C3: /oauth/revoke authenticates confidential clients like /oauth/token."""
    confidential_first_party(app, "backend")
    response = client.post(
        "/oauth/revoke", data={"token": "anything"}, headers=basic_auth("backend", "wrong")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_revoke_without_token_is_invalid_request(client: TestClient) -> None:
    """C9: RFC 7009 §2.1 - `token` is required."""
    response = revoke(client, None, token_type_hint="refresh_token")
    assert_oauth_error(response, 400, "invalid_request")


def test_revoking_an_own_access_token_stops_it_at_once(
    client: TestClient, user: dict[str, Any]
) -> None:
    """C9 (RFC 7009): a revoked JWT access token is refused by our own API."""
    access = user["tokens"]["access_token"]
    assert client.get("/users/me", headers=bearer(access)).status_code == 200
    response = revoke(client, access)
    assert response.status_code == 200
    assert client.get("/users/me", headers=bearer(access)).status_code == 401
    assert revoke(client, access).status_code == 200  # twice is fine (RFC 7009 §2.2)


def test_refreshed_access_token_is_not_older_than_the_revocation_mark(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    mark = int(time.time()) + 30
    set_user(app, tokens_valid_after=mark)
    response = refresh(client, user["tokens"]["refresh_token"])
    assert response.status_code == 200, response.text
    assert jwt_claims(response.json()["access_token"])["iat"] == mark


def test_unknown_token_is_invalid_grant(client: TestClient, user: dict[str, Any]) -> None:
    assert_invalid_grant(refresh(client, "not-a-token-we-issued"))
