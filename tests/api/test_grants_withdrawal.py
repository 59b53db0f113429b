"""Withdrawing an app (L24, A9): its refresh tokens, its access tokens (refused at
the API and at introspection) and its unredeemed codes end at once, and the
grant and its withdrawal are stored audit events; the list shows scopes in words.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import bearer
from tests.support.callers import THIRD_PARTY, basic_headers, third_party_token
from tests.support.introspection import introspect, resource_server
from tests.support.oauth_flow import obtain_code, redeem
from tests.support.problems import assert_problem
from tests.support.wiring import engine_of
from userservice.db.models import AuditEvent
from userservice.services.scopes import describe

SCOPE = "openid profile offline_access"
GRANTED = SCOPE.split()


def _events(app: FastAPI) -> list[tuple[str, str | None, str | None, dict[str, object]]]:
    query = select(AuditEvent).where(AuditEvent.event.like("consent.%")).order_by(AuditEvent.id)
    with engine_of(app).connect() as conn:
        rows = conn.execute(query)
        return [(row.event, row.client_id, row.ip, json.loads(row.details)) for row in rows]


def test_withdrawing_an_app_ends_its_refresh_and_access_tokens_and_codes(
    with_app: TestClient, app: FastAPI
) -> None:
    tokens = third_party_token(with_app, SCOPE)
    code, verifier = obtain_code(with_app, THIRD_PARTY, scope=SCOPE)
    gateway = resource_server(app)
    assert with_app.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    assert introspect(with_app, tokens["access_token"], gateway).json()["active"] is True
    withdrawn = with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=basic_headers())
    assert withdrawn.status_code == 204, withdrawn.text
    assert with_app.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert introspect(with_app, tokens["access_token"], gateway).json() == {"active": False}
    refreshed = with_app.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": THIRD_PARTY,
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    late = redeem(with_app, code, verifier, THIRD_PARTY)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    again = with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=basic_headers())
    assert again.status_code == 404 and assert_problem(again)["code"] == "not_found"


def test_the_grant_and_its_withdrawal_are_stored_events(with_app: TestClient, app: FastAPI) -> None:
    """L25: with the app and the scope, and nothing personal in the details."""
    third_party_token(with_app, SCOPE)
    with_app.delete(f"/users/me/grants/{THIRD_PARTY}", headers=basic_headers())
    assert _events(app) == [
        ("consent.granted", THIRD_PARTY, "testclient", {"scope": " ".join(sorted(GRANTED))}),
        ("consent.revoked", THIRD_PARTY, "testclient", {}),
    ]


def test_the_list_says_each_scope_in_words(with_app: TestClient) -> None:
    third_party_token(with_app, SCOPE)
    [grant] = with_app.get("/users/me/grants", headers=basic_headers()).json()
    assert sorted(grant["scope"].split()) == sorted(GRANTED)
    assert grant["scopes"] == [
        {"scope": scope, "description": describe(scope)} for scope in grant["scope"].split()
    ]
    words = {s["scope"]: s["description"] for s in grant["scopes"]}
    assert words["profile"] == "See your display name"
