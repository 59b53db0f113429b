"""The passkey pages in-process over HTTPS, on SQLite and PostgreSQL (M9, M10, M6):
the options JSON each page carries for the local script, answered by a software
authenticator with real ES256 keys (tests/support/soft_authenticator.py) as the
browser would. Passwordless and second-step sign-ins with their amr; garbage,
forged, replayed and foreign answers refused with 400, a message and never a
session; the account page's add, rename and remove; without passkeys (an IP
address as public URL, an account with an app only) the pages are as before."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.accounts import PASSWORD, register
from tests.support.factors import now_code, verified
from tests.support.pages import EMAIL, SESSION, check_page_headers, csrf_token, web_login
from tests.support.passkey_pages import ORIGIN, as_json, options_in, passwordless, with_passkey
from tests.support.soft_authenticator import SoftAuthenticator, b64url
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.db.models_passkeys import SpentChallenge
from userservice.security.secrets import digest
from userservice.settings import Settings
from userservice.wiring import wired

HALF = "__Host-half-login"
NOT_ACCEPTED = "That passkey could not be used to sign in."
ZH = {"Accept-Language": "zh-CN"}


def stored_amr(app: FastAPI, raw_id: str) -> str | None:
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw_id))
        amr: str | None = conn.execute(query).scalar_one()
    return amr


@pytest.mark.parametrize(
    ("headers", "button"), [({}, "Sign in with a passkey"), (ZH, "使用通行密钥登录")]
)
def test_m9_sign_in_page_carries_passwordless_options(
    app: FastAPI, client: TestClient, headers: dict[str, str], button: str
) -> None:
    pages = [client.get("/login", headers=headers) for _ in range(3)]
    for page in pages:
        assert page.status_code == 200
        check_page_headers(page)
        assert button in page.text
        assert '<script src="/static/passkey.js" defer></script>' in page.text
        options = options_in(page.text, "passkey-sign-in-options")
        assert options["rpId"] == "testserver" and options["allowCredentials"] == []
        assert options["userVerification"] == "required"  # M10
    challenges = {options_in(p.text, "passkey-sign-in-options")["challenge"] for p in pages}
    assert len(challenges) == 3
    # Stateless: showing the page wrote nothing (only an answer spends a challenge).
    with engine_of(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(SpentChallenge)).scalar_one() == 0
    script = client.get("/static/passkey.js")
    assert script.status_code == 200 and "navigator.credentials" in script.text


def test_m9_m10_passwordless_sign_in_says_hwk_mfa(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    response = passwordless(client, as_json(soft))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    raw_id = response.cookies.get(SESSION)
    assert raw_id and stored_amr(app, raw_id) == "hwk mfa"
    account = client.get("/account")
    assert account.status_code == 200 and "Laptop" in account.text


def _foreign_credential(_soft: SoftAuthenticator) -> Callable[[dict[str, Any]], str]:
    """A well-formed answer signed by a key the server never registered."""
    soft = SoftAuthenticator()
    made = {
        "rp": {"id": "testserver"},
        "user": {"id": b64url(uuid.uuid4().bytes)},
        "challenge": b64url(b"x" * 32),
    }
    soft.create(made, ORIGIN)
    return as_json(soft)


BAD_ANSWERS: dict[str, Callable[[SoftAuthenticator], Callable[[dict[str, Any]], str]]] = {
    "empty": lambda _s: lambda _o: "",
    "not json": lambda _s: lambda _o: "{not json",
    "a list": lambda _s: lambda _o: "[]",
    "an empty object": lambda _s: lambda _o: "{}",
    "no response": lambda _s: lambda _o: '{"id": "AAAA", "rawId": "AAAA", "type": "public-key"}',
    "too long": lambda _s: lambda _o: json.dumps({"id": "A" * 20_000}),
    "unregistered key": _foreign_credential,
    "another origin": lambda s: lambda o: json.dumps(s.get(o, "https://evil.example")),
    "another rp id": lambda s: lambda o: json.dumps(s.get(o, ORIGIN, rp_id="evil.example")),
    "no user verification": lambda s: as_json(s, user_verified=False),
    "a counter gone back": lambda s: as_json(s, counter_step=-5),
}


@pytest.mark.parametrize("bad", sorted(BAD_ANSWERS))
def test_m9_bad_answers_get_400_a_message_and_no_session(
    app: FastAPI, client: TestClient, user: dict[str, Any], bad: str
) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    if bad == "a counter gone back":
        assert passwordless(client, as_json(soft, counter_step=10)).status_code == 303
        client.cookies.clear()
    if bad == "another rp id":
        soft.credentials[0].rp_id = "evil.example"
    response = passwordless(client, BAD_ANSWERS[bad](soft))
    assert response.status_code == 400, response.text
    assert NOT_ACCEPTED in response.text
    assert SESSION not in response.cookies
    check_page_headers(response)
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_m9_an_answer_is_spent_once(app: FastAPI, client: TestClient, user: dict[str, Any]) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    page = client.get("/login")
    answer = json.dumps(soft.get(options_in(page.text, "passkey-sign-in-options"), ORIGIN))
    form = {"csrf_token": csrf_token(page.text), "response": answer}
    first = client.post("/login/passkey", data=form, follow_redirects=False)
    assert first.status_code == 303
    client.cookies.delete(SESSION)
    again = client.post("/login/passkey", data=form, follow_redirects=False)
    assert again.status_code == 400 and SESSION not in again.cookies


def _second_step_page(client: TestClient) -> httpx.Response:
    assert web_login(client).headers["location"] == "/login/second-factor"
    page = client.get("/login/second-factor")
    assert page.status_code == 200
    return page


def test_m6_m10_password_then_passkey_says_pwd_hwk_mfa(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    page = _second_step_page(client)
    options = options_in(page.text, "passkey-second-step-options")
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(soft.credentials[0].id)]
    form = {"csrf_token": csrf_token(page.text), "response": json.dumps(soft.get(options, ORIGIN))}
    done = client.post("/login/second-factor/passkey", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    raw_id = done.cookies.get(SESSION)
    assert raw_id and stored_amr(app, raw_id) == "pwd hwk mfa"
    assert HALF not in client.cookies


def test_m6_m9_a_half_login_cannot_use_another_accounts_passkey(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    ada, bob = SoftAuthenticator(), SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], ada)
    bob_id = register(client, "bob@example.com")["id"]
    with_passkey(app, "bob@example.com", bob_id, bob)
    page = _second_step_page(client)
    options = options_in(page.text, "passkey-second-step-options")
    foreign = bob.get(options, ORIGIN, credential=bob.credentials[0])
    form = {"csrf_token": csrf_token(page.text), "response": json.dumps(foreign)}
    refused = client.post("/login/second-factor/passkey", data=form, follow_redirects=False)
    assert refused.status_code == 400 and SESSION not in refused.cookies
    assert "That passkey could not be used." in refused.text
    # Bob's key cannot even sign in Bob here: the challenge is bound to Ada's half-login.
    assert client.get("/account", follow_redirects=False).status_code == 303
    # Ada's own passkey still finishes her half-login (one failure of five spent).
    again = client.get("/login/second-factor")
    options = options_in(again.text, "passkey-second-step-options")
    form = {"csrf_token": csrf_token(again.text), "response": json.dumps(ada.get(options, ORIGIN))}
    done = client.post("/login/second-factor/passkey", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert stored_amr(app, done.cookies[SESSION]) == "pwd hwk mfa"


def test_m9_no_passkey_forms_where_they_cannot_work(
    make_settings: Callable[..., Settings], client: TestClient, user: dict[str, Any]
) -> None:
    # An app only: the second step is the code form alone, as before.
    app = client.app
    assert isinstance(app, FastAPI)
    verified(app, EMAIL)
    factors, uid = wired(app).factors, uuid.UUID(user["id"])
    secret = factors.start_totp(uid, ip=None).secret
    factors.confirm_totp(uid, now_code(secret, -1), ip=None, locale="en")
    page = _second_step_page(client)
    assert "passkey" not in page.text.lower()
    # An IP address as public URL: no relying party, so no passkey anywhere (M9).
    by_ip = create_app(make_settings(issuer="https://192.0.2.1"))
    with TestClient(by_ip, base_url="https://192.0.2.1") as other:
        register(other, "cy@example.com")
        assert "passkey-sign-in" not in other.get("/login").text
        assert web_login(other, "cy@example.com").status_code == 303
        account = other.get("/account")
        assert 'id="passkeys-unavailable"' in account.text
        assert 'action="/account/passkeys/add"' not in account.text


def _add(client: TestClient, soft: SoftAuthenticator, name: str) -> httpx.Response:
    account = client.get("/account")
    form = {"csrf_token": csrf_token(account.text), "name": name, "current_password": PASSWORD}
    page = client.post("/account/passkeys/add", data=form)
    assert page.status_code == 200, page.text
    options = options_in(page.text, "passkey-create-options")
    answer = json.dumps(soft.create(options, ORIGIN))
    finish = {"csrf_token": csrf_token(page.text), "name": name, "response": answer}
    response: httpx.Response = client.post("/account/passkeys", data=finish, follow_redirects=False)
    return response


def test_m9_account_page_adds_renames_and_removes_passkeys(
    app: FastAPI, client: TestClient, user: dict[str, Any], signed_in: str
) -> None:
    verified(app, EMAIL)
    soft = SoftAuthenticator()
    account = client.get("/account")
    assert 'id="no-passkeys"' in account.text
    wrong = {"csrf_token": csrf_token(account.text), "name": "Laptop", "current_password": "x"}
    refused = client.post("/account/passkeys/add", data=wrong)
    assert refused.status_code == 400 and 'id="passkey_password-error"' in refused.text

    first = _add(client, soft, "Laptop")
    assert first.status_code == 200
    assert len(re.findall(r"<li><code>", first.text)) == 10  # M2: the first factor's codes
    assert client.cookies[SESSION] != signed_in  # a new session for this browser (F2)
    # The first key excludes itself: the second comes from another authenticator.
    second = _add(client, SoftAuthenticator(), "Phone")
    assert second.status_code == 303, second.text
    assert second.headers["location"] == "/account?done=passkey-added#passkeys"
    keys = wired(app).passkeys.list(uuid.UUID(user["id"]))
    assert [k.name for k in keys] == ["Laptop", "Phone"]

    page = client.get("/account?done=passkey-added")
    assert "Your passkey was added." in page.text and "Phone" in page.text
    form = {"csrf_token": csrf_token(page.text), "name": "Work laptop"}
    renamed = client.post(f"/account/passkeys/{keys[0].id}/rename", data=form)
    assert renamed.status_code == 200 and "Work laptop" in renamed.text
    bad = {"csrf_token": csrf_token(page.text), "current_password": "nope"}
    kept = client.post(f"/account/passkeys/{keys[1].id}/remove", data=bad)
    assert kept.status_code == 400
    good = {"csrf_token": csrf_token(page.text), "current_password": PASSWORD}
    gone = client.post(f"/account/passkeys/{keys[1].id}/remove", data=good)
    assert gone.status_code == 200 and "The passkey was removed." in gone.text
    assert [k.name for k in wired(app).passkeys.list(uuid.UUID(user["id"]))] == ["Work laptop"]
    # Unknown or malformed ids go back to the page, never a 500.
    for key in ("not-a-uuid", str(uuid.uuid4())):
        answer = client.post(f"/account/passkeys/{key}/remove", data=good)
        assert answer.status_code == 200


def test_m9_a_garbage_registration_is_refused_on_the_account_page(
    app: FastAPI, client: TestClient, user: dict[str, Any], signed_in: str
) -> None:
    verified(app, EMAIL)
    page = client.get("/account")
    for answer in ("", "{}", "[1]", json.dumps({"response": {"attestationObject": "AA"}})):
        form = {"csrf_token": csrf_token(page.text), "name": "Laptop", "response": answer}
        refused = client.post("/account/passkeys", data=form)
        assert refused.status_code == 400, refused.text
        assert "The passkey could not be added" in refused.text
    assert wired(app).passkeys.list(uuid.UUID(user["id"])) == []
    assert client.cookies[SESSION] == signed_in
