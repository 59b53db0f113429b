"""Review fixes of the passkey pages, in-process over HTTPS on SQLite and
PostgreSQL: answers nested past the JSON parser's depth are a 400 on every
passkey form, never a 500 (M9); passwordless sign-in charged to the per-address
sign-in limit, 429 past it and no audit row per further attempt (M9, S12); an
account page's registration challenge bound to its browser session (M9)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.accounts import PASSWORD, register
from tests.support.factors import verified
from tests.support.pages import EMAIL, SESSION, csrf_token, web_login
from tests.support.passkey_pages import ORIGIN, as_json, options_in, passwordless, with_passkey
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import AuditEvent
from userservice.settings import Settings
from userservice.wiring import wired

NOT_ACCEPTED = "That passkey could not be used to sign in."
TOO_MANY = "Too many sign-in attempts."
# Under the form's 16 KB bound, deeper than json.loads recurses (RecursionError).
DEEP = ["[" * 16_000, '{"a":' * 3_000]


@pytest.mark.parametrize("deep", DEEP)
def test_m9_a_deeply_nested_passwordless_answer_is_a_400(
    app: FastAPI, client: TestClient, user: dict[str, Any], deep: str
) -> None:
    with_passkey(app, EMAIL, user["id"], SoftAuthenticator())
    refused = passwordless(client, lambda _options: deep)
    assert refused.status_code == 400, refused.text
    assert NOT_ACCEPTED in refused.text and SESSION not in refused.cookies


@pytest.mark.parametrize("deep", DEEP)
def test_m6_m9_a_deeply_nested_second_step_answer_is_a_400(
    app: FastAPI, client: TestClient, user: dict[str, Any], deep: str
) -> None:
    with_passkey(app, EMAIL, user["id"], SoftAuthenticator())
    assert web_login(client).headers["location"] == "/login/second-factor"
    page = client.get("/login/second-factor")
    form = {"csrf_token": csrf_token(page.text), "response": deep}
    refused = client.post("/login/second-factor/passkey", data=form, follow_redirects=False)
    assert refused.status_code == 400, refused.text
    assert SESSION not in refused.cookies


@pytest.mark.parametrize("deep", DEEP)
def test_m9_a_deeply_nested_registration_is_a_400(
    app: FastAPI, client: TestClient, user: dict[str, Any], signed_in: str, deep: str
) -> None:
    verified(app, EMAIL)
    page = client.get("/account")
    form = {"csrf_token": csrf_token(page.text), "name": "Laptop", "response": deep}
    refused = client.post("/account/passkeys", data=form)
    assert refused.status_code == 400, refused.text
    assert "The passkey could not be added" in refused.text
    assert wired(app).passkeys.list(uuid.UUID(user["id"])) == []


def _failed_rows(app: FastAPI) -> int:
    with engine_of(app).connect() as conn:
        query = select(func.count()).where(AuditEvent.event == "login.failed")
        count: int = conn.execute(query).scalar_one()
    return count


def test_m9_s12_passwordless_sign_in_is_throttled_per_address(
    make_settings: Callable[..., Settings],
) -> None:
    limit = 3
    app = create_app(make_settings(login_limit_per_ip=f"{limit}/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        user = register(client, EMAIL)
        soft, stranger = SoftAuthenticator(), SoftAuthenticator()
        with_passkey(app, EMAIL, user["id"], soft)
        # A key of this relying party the service never stored: audited refusals.
        stranger.create(wired(app).passkeys.registration_options(uuid.UUID(user["id"])), ORIGIN)
        for _ in range(limit):
            refused = passwordless(client, as_json(stranger))
            assert refused.status_code == 400 and NOT_ACCEPTED in refused.text
        assert _failed_rows(app) == limit
        for answer in (as_json(stranger), as_json(soft)):
            held: httpx.Response = passwordless(client, answer)
            assert held.status_code == 429, held.text
            assert TOO_MANY in held.text and int(held.headers["retry-after"]) >= 1
            assert SESSION not in held.cookies
        # Nothing written past the limit: the rows stop at the limit.
        assert _failed_rows(app) == limit


def _add_start(client: TestClient) -> dict[str, Any]:
    account = client.get("/account")
    form = {"csrf_token": csrf_token(account.text), "name": "Laptop", "current_password": PASSWORD}
    page = client.post("/account/passkeys/add", data=form)
    assert page.status_code == 200, page.text
    return options_in(page.text, "passkey-create-options")


def _add_finish(client: TestClient, answer: str) -> httpx.Response:
    account = client.get("/account")
    form = {"csrf_token": csrf_token(account.text), "name": "Laptop", "response": answer}
    response: httpx.Response = client.post("/account/passkeys", data=form, follow_redirects=False)
    return response


def test_m9_a_registration_challenge_is_bound_to_its_browser_session(
    app: FastAPI, client: TestClient, user: dict[str, Any], signed_in: str
) -> None:
    verified(app, EMAIL)
    answer = json.dumps(SoftAuthenticator().create(_add_start(client), ORIGIN))
    with TestClient(app, base_url="https://testserver") as other:
        assert web_login(other).status_code == 303
        refused = _add_finish(other, answer)
        assert refused.status_code == 400, refused.text
        assert "The passkey could not be added" in refused.text
    assert wired(app).passkeys.list(uuid.UUID(user["id"])) == []
    # A challenge of the JSON API does not register on the page either.
    api = wired(app).passkeys.registration_options(uuid.UUID(user["id"]))
    assert (
        _add_finish(client, json.dumps(SoftAuthenticator().create(api, ORIGIN))).status_code == 400
    )
    # In the session it was minted for, the very same answer registers.
    added = _add_finish(client, answer)
    assert added.status_code == 200, added.text
    assert [k.name for k in wired(app).passkeys.list(uuid.UUID(user["id"]))] == ["Laptop"]
