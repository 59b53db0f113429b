"""/users/me/sessions: the user's browser sessions listed and ended through the API
(L22), and "sign out everywhere" against every kind of caller (L23), on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer, login, register
from tests.support.callers import (
    THIRD_PARTY_SCOPES,
    assert_first_party_only,
    basic_headers,
    service_headers,
    third_party_token,
)
from tests.support.oauth_flow import EMAIL, sign_in, signed_in
from tests.support.pages import SESSION, session_opens
from tests.support.problems import assert_problem
from tests.support.wiring import engine_of
from userservice.db.models import BrowserSession
from userservice.services.policy import POLICY, Caller

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIELDS = {"id", "device", "user_agent", "ip", "created_at", "last_seen_at", "expires_at"}


def _browser(app: FastAPI, email: str = EMAIL, agent: str = CHROME) -> TestClient:
    browser = TestClient(app, base_url="https://testserver", headers={"User-Agent": agent})
    sign_in(browser, email=email)
    return browser


def _listed(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/users/me/sessions", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: list[dict[str, Any]] = response.json()
    return body


def _stored_secrets(app: FastAPI) -> set[str]:
    with engine_of(app).connect() as conn:
        return {row.id_digest for row in conn.execute(BrowserSession.__table__.select())}


def test_the_users_sessions_are_listed_and_nothing_in_them_opens_one(
    client: TestClient, app: FastAPI
) -> None:
    """L22: two sessions of Ada's, none of Bob's; no id, digest or secret."""
    signed_in(client)
    chrome = _browser(app)
    register(client, "bob@example.com")
    bobs = _browser(app, "bob@example.com")
    listed = _listed(client, basic_headers())
    assert len(listed) == 2 and all(set(s) == FIELDS for s in listed)
    assert {s["device"] for s in listed} == {"Chrome 120 on Linux", "Unknown device"}
    assert {s["user_agent"] for s in listed} == {CHROME, "testclient"}
    assert {s["ip"] for s in listed} == {"testclient"}
    assert listed[0]["created_at"] >= listed[1]["created_at"]
    secrets = _stored_secrets(app) | {str(b.cookies.get(SESSION)) for b in (client, chrome, bobs)}
    text = str(listed)
    assert not any(secret in text for secret in secrets)
    assert len(_listed(client, basic_headers("bob@example.com"))) == 1


def test_ending_a_session_signs_that_browser_out_only(client: TestClient, app: FastAPI) -> None:
    signed_in(client)
    chrome = _browser(app)
    first_party = bearer(login(client, EMAIL)["access_token"])
    [theirs] = [s for s in _listed(client, first_party) if s["user_agent"] == CHROME]
    ended = client.delete(f"/users/me/sessions/{theirs['id']}", headers=first_party)
    assert ended.status_code == 204, ended.text
    assert chrome.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 200
    again = client.delete(f"/users/me/sessions/{theirs['id']}", headers=first_party)
    assert again.status_code == 404 and assert_problem(again)["code"] == "not_found"


def test_another_users_session_is_not_found_like_an_unknown_one(
    client: TestClient, app: FastAPI
) -> None:
    """L22: Ada cannot end Bob's session, nor learn that its handle exists."""
    signed_in(client)
    register(client, "bob@example.com")
    bobs = _browser(app, "bob@example.com")
    [handle] = [s["id"] for s in _listed(client, basic_headers("bob@example.com"))]
    answers = [
        client.delete(f"/users/me/sessions/{target}", headers=basic_headers())
        for target in (handle, "A" * 22, "x" * 300)
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.content for a in answers}) == 1
    assert bobs.get("/account", follow_redirects=False).status_code == 200


def _dead(client: TestClient, tokens: dict[str, Any]) -> bool:
    me = client.get("/users/me", headers=bearer(tokens["access_token"]))
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    return me.status_code == 401 and refreshed.json().get("error") == "invalid_grant"


def _end_all(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.delete("/users/me/sessions", headers=headers)


def test_sign_out_everywhere_against_every_caller(with_app: TestClient, app: FastAPI) -> None:
    """S1, S2, L23: refused callers end nothing; the user in person and a first-party
    token end every session, refresh token and access token, their own included."""
    assert POLICY["end_all_sessions"].callers == {Caller.IN_PERSON, Caller.FIRST_PARTY}
    browser = with_app.cookies.get(SESSION)
    assert browser and session_opens(app, browser)
    kept = login(with_app, EMAIL)
    assert _end_all(with_app, {}).status_code == 401
    for scope in ("openid", THIRD_PARTY_SCOPES):
        third = bearer(third_party_token(with_app, scope)["access_token"])
        assert_first_party_only(_end_all(with_app, third))
    service = _end_all(with_app, service_headers(with_app))
    assert service.status_code == 403 and assert_problem(service)["code"] == "forbidden"
    assert session_opens(app, browser) and not _dead(with_app, kept)
    for name in ("first-party", "basic"):
        tokens = login(with_app, EMAIL)
        chrome = _browser(app)
        own = bearer(tokens["access_token"])
        response = _end_all(with_app, own if name == "first-party" else basic_headers())
        assert response.status_code == 204, (name, response.text)
        assert _dead(with_app, tokens), name
        assert chrome.get("/account", follow_redirects=False).status_code == 303
        assert _listed(with_app, basic_headers()) == []
    assert not session_opens(app, browser) and _dead(with_app, kept)
