"""Passkeys wherever a second factor is asked for on the pages, in-process over
HTTPS on SQLite and PostgreSQL (M6, M7, M8, M9, M13, M2): every render of the
second step offers the account's passkey; the texts fit an account with the app,
with passkeys, or both, in English and Chinese; the account page warns of few
recovery codes whatever the factor."""

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
from sqlalchemy import select

from tests.support.accounts import PASSWORD, register
from tests.support.factors import now_code, verified, wrong_code
from tests.support.journeys import mails
from tests.support.pages import EMAIL, SESSION, csrf_token, web_login
from tests.support.passkey_pages import ORIGIN, as_json, options_in, passwordless, with_passkey
from tests.support.soft_authenticator import SoftAuthenticator
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.settings import Settings
from userservice.wiring import wired

PAGE = "/login/second-factor"
OPTIONS = "passkey-second-step-options"
ZH = {"Accept-Language": "zh-CN"}


def _with_app(app: FastAPI, user_id: str) -> str:
    verified(app, EMAIL)
    factors, uid = wired(app).factors, uuid.UUID(user_id)
    secret = factors.start_totp(uid, ip=None).secret
    factors.confirm_totp(uid, now_code(secret, -1), ip=None, locale="en")
    return secret


def _half_login(client: TestClient) -> httpx.Response:
    assert web_login(client).headers["location"] == PAGE
    page = client.get(PAGE)
    assert page.status_code == 200
    return page


def _send(client: TestClient, page: httpx.Response, code: str) -> httpx.Response:
    form = {"csrf_token": csrf_token(page.text), "code": code}
    response: httpx.Response = client.post(PAGE, data=form, follow_redirects=False)
    return response


def _offers_passkey(page: httpx.Response) -> bool:
    return f'id="{OPTIONS}"' in page.text and 'action="/login/second-factor/passkey"' in page.text


def test_m6_m9_every_render_of_the_second_step_offers_the_passkey(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)
    page = _half_login(client)
    assert _offers_passkey(page)
    empty = _send(client, page, "   ")
    assert empty.status_code == 400 and _offers_passkey(empty)
    wrong = _send(client, empty, "aaaa-bbbb-cccc-dddd")
    assert wrong.status_code == 400 and _offers_passkey(wrong)
    # The options of a re-rendered page still finish the sign-in (M10: pwd hwk mfa).
    options = options_in(empty.text, OPTIONS)
    form = {"csrf_token": csrf_token(wrong.text), "response": _answer(soft, options)}
    done = client.post(PAGE + "/passkey", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account"


def _answer(soft: SoftAuthenticator, options: dict[str, Any]) -> str:
    return json.dumps(soft.get(options, ORIGIN))


def test_m1_m9_a_throttled_code_page_offers_the_passkey_too(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(second_factor_limit="2/5minutes"))
    with TestClient(app, base_url="https://testserver") as client:
        user_id = register(client, EMAIL)["id"]
        secret = _with_app(app, user_id)
        soft = SoftAuthenticator()
        with_passkey(app, EMAIL, user_id, soft)
        page = _half_login(client)
        for _ in range(2):
            page = _send(client, page, wrong_code(secret))
            assert page.status_code == 400
        throttled = _send(client, page, now_code(secret))
        assert throttled.status_code == 429 and "Too many wrong codes" in throttled.text
        assert _offers_passkey(throttled)
        # The passkey has its own limit: it still signs in after the codes' limit.
        options = options_in(throttled.text, OPTIONS)
        form = {"csrf_token": csrf_token(throttled.text), "response": _answer(soft, options)}
        done = client.post(PAGE + "/passkey", data=form, follow_redirects=False)
        assert done.status_code == 303 and SESSION in done.cookies


APP_INTRO = "Now enter the code your authenticator app shows."
BOTH_INTRO = "Now enter the code your authenticator app shows, or use your passkey."
KEY_INTRO = "Now use your passkey. If you cannot, enter one of your recovery codes."


@pytest.mark.parametrize("kind", ["app", "passkey", "both"])
def test_m6_m9_the_second_step_speaks_of_the_factors_the_account_has(
    app: FastAPI, client: TestClient, user: dict[str, Any], kind: str
) -> None:
    if kind in ("app", "both"):
        _with_app(app, user["id"])
    if kind in ("passkey", "both"):
        with_passkey(app, EMAIL, user["id"], SoftAuthenticator())
    page = _half_login(client)
    text = page.text
    intro = {"app": APP_INTRO, "passkey": KEY_INTRO, "both": BOTH_INTRO}[kind]
    assert intro in text
    assert (APP_INTRO in text) == (kind == "app")
    if kind == "passkey":
        assert "authenticator app" not in text
        assert '<label for="code">Recovery code</label>' in text
        assert ">Use your passkey</h2>" in text
        empty = _send(client, page, "")
        assert "Use your passkey, or enter one of your recovery codes." in empty.text
        wrong = _send(client, empty, "aaaa-bbbb-cccc-dddd")
        assert "That recovery code is not correct, or it was used already." in wrong.text
        refused = client.post(
            PAGE + "/passkey", data={"csrf_token": csrf_token(wrong.text), "response": "{}"}
        )
        assert refused.status_code == 400
        assert "Try again, or enter a recovery code." in refused.text
        assert "authenticator app" not in refused.text
    else:
        assert '<label for="code">Code</label>' in text
    chinese = client.get(PAGE, headers=ZH).text
    zh_intro = {
        "app": "现在请输入您的身份验证器应用显示的验证码。",
        "passkey": "现在请使用您的通行密钥。如果无法使用",
        "both": "或使用您的通行密钥。",
    }[kind]
    assert zh_intro in chinese


def _codes_left(app: FastAPI, user_id: str, codes: list[str], left: int) -> None:
    """Spend recovery codes through the second step's own check until `left` remain."""
    factors = wired(app).factors
    for code in codes[: len(codes) - left]:
        factors.verify(uuid.UUID(user_id), code, ip=None, locale="en")


def _first_passkey_codes(app: FastAPI, user_id: str) -> list[str]:
    verified(app, EMAIL)
    passkeys, uid = wired(app).passkeys, uuid.UUID(user_id)
    answer = SoftAuthenticator().create(passkeys.registration_options(uid), ORIGIN)
    codes = passkeys.register(
        uid, json.dumps(answer), "Laptop", ip=None, locale="en"
    ).recovery_codes
    assert codes is not None and len(codes) == 10
    return codes


def test_m2_m9_few_codes_left_are_warned_of_for_a_passkey_only_account(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    codes = _first_passkey_codes(app, user["id"])
    assert web_login(client).headers["location"] == PAGE
    _codes_left(app, user["id"], codes, 4)
    client.cookies.clear()
    page = _half_login(client)
    form = {"csrf_token": csrf_token(page.text), "code": codes[-1]}
    assert client.post(PAGE, data=form, follow_redirects=False).status_code == 303
    account = client.get("/account")
    assert 'id="codes-left">3 of 10<' in account.text
    assert "if you lose your passkeys." in account.text
    assert "lose your phone" not in account.text
    assert 'action="/account/two-factor/recovery-codes"' in account.text
    assert "丢失通行密钥时仍能登录" in client.get("/account", headers=ZH).text
    # A new set for a passkey-only account, worded for passkeys (M2).
    token = csrf_token(account.text)
    renewed = client.post(
        "/account/two-factor/recovery-codes",
        data={"csrf_token": token, "current_password": PASSWORD},
    )
    assert renewed.status_code == 200
    assert len(re.findall(r"<li><code>", renewed.text)) == 10
    assert "If you lose your passkeys" in renewed.text and "phone" not in renewed.text
    assert 'id="codes-low"' not in client.get("/account").text


def test_m2_the_app_only_warning_keeps_its_words_and_both_name_both(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    _with_app(app, user["id"])
    codes = wired(app).factors.regenerate_recovery_codes(
        uuid.UUID(user["id"]), ip=None, locale="en"
    )
    _codes_left(app, user["id"], codes, 2)
    page = _half_login(client)
    form = {"csrf_token": csrf_token(page.text), "code": codes[-1]}
    assert client.post(PAGE, data=form, follow_redirects=False).status_code == 303
    account = client.get("/account").text
    assert 'id="codes-left">1 of 10<' in account
    assert "if you lose your phone.</p>" in account
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user["id"], soft)  # ends every session (M9)
    client.cookies.clear()
    page = _half_login(client)
    options = options_in(page.text, OPTIONS)
    form = {"csrf_token": csrf_token(page.text), "response": _answer(soft, options)}
    assert client.post(PAGE + "/passkey", data=form, follow_redirects=False).status_code == 303
    account = client.get("/account").text
    assert "if you lose your phone and your passkeys.</p>" in account


EMAIL_PAGE = "/account/email/passkey"
NEW = "new@example.com"


def _passkey_account(app: FastAPI, client: TestClient, user_id: str) -> SoftAuthenticator:
    soft = SoftAuthenticator()
    with_passkey(app, EMAIL, user_id, soft)
    signed = passwordless(client, as_json(soft))
    assert signed.status_code == 303 and SESSION in signed.cookies
    return soft


def _email_form(page: httpx.Response, soft: SoftAuthenticator, **fields: str) -> dict[str, str]:
    options = options_in(page.text, "email-passkey-options")
    return {
        "csrf_token": csrf_token(page.text),
        "email": NEW,
        "current_password": PASSWORD,
        "response": _answer(soft, options),
        **fields,
    }


def test_m7_m9_a_passkey_only_account_changes_its_address_with_its_passkey(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    soft = _passkey_account(app, client, user["id"])
    page = client.get("/account")
    assert 'action="/account/email/passkey"' in page.text
    assert '<label for="email_code">A recovery code</label>' in page.text
    options = options_in(page.text, "email-passkey-options")
    assert options["rpId"] == "testserver" and options["allowCredentials"]
    # The code form without a code names the recovery code and the passkey (M7).
    no_code = {"csrf_token": csrf_token(page.text), "email": NEW, "current_password": PASSWORD}
    refused = client.post("/account/email", data=no_code)
    assert refused.status_code == 400
    assert "Enter a recovery code, or confirm the change with your passkey." in refused.text
    # The password is still asked; a wrong one sends nothing (the passkey spent).
    wrong = client.post(EMAIL_PAGE, data=_email_form(page, soft, current_password="nope"))
    assert wrong.status_code == 400 and 'id="passkey_email_password-error"' in wrong.text
    assert mails(app, NEW, "email_change_verify") == []
    done = client.post(EMAIL_PAGE, data=_email_form(wrong, soft), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account?done=email-sent"
    assert len(mails(app, NEW, "email_change_verify")) == 1
    assert "更改电子邮件地址" in client.get("/account", headers=ZH).text


@pytest.mark.parametrize("bad", ["empty", "garbage", "replayed", "another session", "foreign"])
def test_m7_m9_a_bad_passkey_answer_changes_no_address(
    app: FastAPI, client: TestClient, user: dict[str, Any], bad: str
) -> None:
    soft = _passkey_account(app, client, user["id"])
    page = client.get("/account")
    form = _email_form(page, soft)
    if bad == "empty":
        form["response"] = ""
    elif bad == "garbage":
        form["response"] = '{"id": "AAAA", "response": {}}'
    elif bad == "replayed":
        assert client.post(EMAIL_PAGE, data=form, follow_redirects=False).status_code == 303
        form["email"] = "other@example.com"
    elif bad == "another session":
        # Options of another browser's session of the same account (M9: bound).
        with TestClient(app, base_url="https://testserver") as other:
            assert passwordless(other, as_json(soft)).status_code == 303
            form["response"] = _answer(
                soft, options_in(other.get("/account").text, "email-passkey-options")
            )
    elif bad == "foreign":
        bob_id = register(client, "bob@example.com")["id"]
        bob = SoftAuthenticator()
        with_passkey(app, "bob@example.com", bob_id, bob)
        options = options_in(page.text, "email-passkey-options")
        form["response"] = json.dumps(bob.get(options, ORIGIN, credential=bob.credentials[0]))
    refused = client.post(EMAIL_PAGE, data=form, follow_redirects=False)
    assert refused.status_code == 400
    assert 'id="email_passkey-error"' in refused.text
    assert "The passkey could not be used" in refused.text
    target = "other@example.com" if bad == "replayed" else NEW
    assert mails(app, target, "email_change_verify") == []


def test_m7_no_passkey_form_for_an_app_only_account(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    secret = _with_app(app, user["id"])
    page = _half_login(client)
    form = {"csrf_token": csrf_token(page.text), "code": now_code(secret)}
    assert client.post(PAGE, data=form, follow_redirects=False).status_code == 303
    account = client.get("/account").text
    assert "email-passkey-options" not in account
    assert "Code from your authenticator app, or a recovery code" in account
    # Without a session's options, the route refuses; nothing is sent (M7).
    refused = client.post(
        EMAIL_PAGE,
        data={"csrf_token": csrf_token(account), "email": NEW, "current_password": PASSWORD},
    )
    assert refused.status_code == 400
    assert mails(app, NEW, "email_change_verify") == []


ENROL = "/login/enrol"
HALF = "__Host-half-login"


def _enrolling(app: FastAPI, client: TestClient) -> httpx.Response:
    """Under `all`, a verified account without a factor after its password (M13)."""
    wired(app).mfa_policy.set_required_for("all", actor_id=uuid.uuid4(), ip=None)
    verified(app, EMAIL)
    assert web_login(client).headers["location"] == ENROL
    page = client.get(ENROL)
    assert page.status_code == 200
    return page


def _create(page: httpx.Response, soft: SoftAuthenticator, name: str = "Laptop") -> dict[str, str]:
    options = options_in(page.text, "enrol-passkey-options")
    answer = json.dumps(soft.create(options, ORIGIN))
    return {"csrf_token": csrf_token(page.text), "name": name, "response": answer}


def test_m8_m13_forced_enrolment_with_a_passkey_shows_codes_and_says_pwd(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    page = _enrolling(app, client)
    assert "Create a passkey instead" in page.text
    assert 'action="/login/enrol/start"' in page.text  # the app stays offered
    options = options_in(page.text, "enrol-passkey-options")
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["user"]["name"] == EMAIL
    assert "改为创建通行密钥" in client.get(ENROL, headers=ZH).text
    soft = SoftAuthenticator()
    done = client.post(ENROL + "/passkey", data=_create(page, soft))
    assert done.status_code == 200, done.text
    assert len(re.findall(r"<li><code>", done.text)) == 10  # M2, once
    assert "If you lose your passkeys" in done.text and "phone" not in done.text
    assert 'href="/account"' in done.text
    raw_id = done.cookies.get(SESSION)
    assert raw_id and HALF not in client.cookies
    # M5, M8: a factor added on the strength of the password proves nothing more.
    assert _stored_amr(app, raw_id) == "pwd"
    assert [k.name for k in wired(app).passkeys.list(uuid.UUID(user["id"]))] == ["Laptop"]
    assert len(mails(app, EMAIL, "passkey_added")) == 1
    # The half-login is over: the answer cannot be sent again.
    again = client.post(ENROL + "/passkey", data=_create(page, soft), follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    # The next sign-in takes the password and the passkey (pwd hwk mfa, M10).
    client.cookies.clear()
    step = _half_login(client)
    answer = _answer(soft, options_in(step.text, OPTIONS))
    form = {"csrf_token": csrf_token(step.text), "response": answer}
    signed = client.post(PAGE + "/passkey", data=form, follow_redirects=False)
    assert signed.status_code == 303
    assert _stored_amr(app, signed.cookies[SESSION]) == "pwd hwk mfa"


def _stored_amr(app: FastAPI, raw_id: str) -> str | None:
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw_id))
        amr: str | None = conn.execute(query).scalar_one()
    return amr


def test_m8_m9_the_enrolment_refuses_answers_not_bound_to_its_half_login(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    page = _enrolling(app, client)
    soft = SoftAuthenticator()
    # Options minted for the account page (no half-login) do not register here.
    unbound = wired(app).passkeys.registration_options(uuid.UUID(user["id"]))
    form = {
        "csrf_token": csrf_token(page.text),
        "name": "Laptop",
        "response": json.dumps(soft.create(unbound, ORIGIN)),
    }
    refused = client.post(ENROL + "/passkey", data=form)
    assert refused.status_code == 400 and SESSION not in refused.cookies
    assert "The passkey could not be added" in refused.text
    assert 'id="enrol-passkey-options"' in refused.text  # offered again
    # M6: every refusal counts as a wrong setup code; the fifth ends the half-login.
    statuses = []
    for bad in ({"response": "{}"}, {"response": ""}, {"name": ""}, {"response": "[1]"}):
        form = {**_create(refused, soft), **bad}
        answer = client.post(ENROL + "/passkey", data=form, follow_redirects=False)
        statuses.append(answer.status_code)
        assert SESSION not in answer.cookies
    assert statuses == [400, 400, 400, 303]
    assert answer.headers["location"] == "/login?too_many_codes=1"
    assert wired(app).passkeys.list(uuid.UUID(user["id"])) == []


def test_m9_where_passkeys_cannot_work_a_passkey_account_is_asked_for_a_recovery_code(
    app: FastAPI, client: TestClient, user: dict[str, Any], make_settings: Callable[..., Settings]
) -> None:
    with_passkey(app, EMAIL, user["id"], SoftAuthenticator())
    # The same database behind a public URL with an IP address: no relying party.
    by_ip = create_app(make_settings(issuer="https://192.0.2.1"))
    with TestClient(by_ip, base_url="https://192.0.2.1") as other:
        assert web_login(other).headers["location"] == PAGE
        page = other.get(PAGE)
        assert page.status_code == 200
        assert "Now enter one of your recovery codes." in page.text
        assert "passkey" not in page.text.lower()
        assert '<label for="code">Recovery code</label>' in page.text
