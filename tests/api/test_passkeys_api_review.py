"""Review fixes of /users/me/factors/passkeys, on SQLite and PostgreSQL: bodies
nested as deep as the JSON parser allows, or deeper, are 4xx problems and never
a 500 (M9); the 201 answer is the passkey the registration stored, with its
codes, as the service hands it back (M9, M2); the API's challenge is its own
(M9)."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import ISSUER, register
from tests.support.callers import first_party_headers
from tests.support.factors import verified
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.wiring import engine_of
from userservice.db.models import User
from userservice.errors import InvalidPasskey
from userservice.wiring import wired

BASE = "/users/me/factors/passkeys"


@pytest.fixture
def ada(client: TestClient, app: FastAPI) -> dict[str, str]:
    register(client, EMAIL)
    verified(app, EMAIL)
    return first_party_headers(client)


def _nested(depth: int) -> str:
    return '{"name": "Key", "response": {"a": ' + "[" * depth + "]" * depth + "}}"


# Parseable near the parser's limit (the handler serialises it again), and past it.
BODIES = [_nested(900), _nested(990), _nested(5_000), '{"name": "Key", "response": ' + "[" * 16_000]


@pytest.mark.parametrize("body", BODIES, ids=["900", "990", "5000", "open"])
def test_m9_deeply_nested_bodies_are_4xx(
    client: TestClient, ada: dict[str, str], body: str
) -> None:
    headers = {**ada, "Content-Type": "application/json"}
    answer = client.post(BASE, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert_problem(answer)


def test_m9_the_registration_answers_with_the_passkey_it_stored(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    options = client.post(f"{BASE}/options", headers=ada).json()
    answer = SoftAuthenticator().create(options, ISSUER)
    added = client.post(BASE, json={"name": "Laptop", "response": answer}, headers=ada)
    assert added.status_code == 201, added.text
    body = added.json()
    (stored,) = wired(app).passkeys.list(_owner(app))
    assert body["id"] == str(stored.id) and body["name"] == "Laptop"
    assert len(body["recovery_codes"]) == 10


def _owner(app: FastAPI) -> uuid.UUID:
    with engine_of(app).connect() as conn:
        found: uuid.UUID = conn.execute(select(User.id).where(User.email == EMAIL)).scalar_one()
    return found


def test_m9_the_service_hands_back_the_new_passkey_and_codes_only_first(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    passkeys, owner = wired(app).passkeys, _owner(app)
    first = passkeys.register(
        owner,
        json.dumps(SoftAuthenticator().create(passkeys.registration_options(owner), ISSUER)),
        "One",
        ip=None,
        locale="en",
    )
    second = passkeys.register(
        owner,
        json.dumps(SoftAuthenticator().create(passkeys.registration_options(owner), ISSUER)),
        "Two",
        ip=None,
        locale="en",
    )
    assert first.recovery_codes is not None and len(first.recovery_codes) == 10
    assert second.recovery_codes is None
    assert [first.passkey, second.passkey] == passkeys.list(owner)
    assert (first.passkey.name, second.passkey.name) == ("One", "Two")


def test_m9_a_page_challenge_does_not_register_over_the_api(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    passkeys, owner = wired(app).passkeys, _owner(app)
    for_page = passkeys.registration_options(owner, session_id="s" * 43)
    answer = SoftAuthenticator().create(for_page, ISSUER)
    refused = client.post(BASE, json={"name": "Laptop", "response": answer}, headers=ada)
    assert refused.status_code == 403 and assert_problem(refused)["code"] == "invalid_passkey"
    with pytest.raises(InvalidPasskey):
        passkeys.register(owner, json.dumps(answer), "Laptop", ip=None, locale="en")
    assert passkeys.list(owner) == []
