"""The rule `all` on the hosted sign-in (M13, M8), in English and Simplified
Chinese: a plain user without a factor sets up an authenticator app after the
password and before any session (the key read from the page, the first code by
pyotp, ten recovery codes shown once), the enrolment text speaks of the account,
not of administrators; an unverified address gets "verify your email first"; the
account page keeps the last factor on with the rule's own words. In-process over
HTTPS on SQLite and PostgreSQL, and once in a real Chromium against uvicorn over
TLS with axe."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.axe import axe_source
from tests.support.browser import require_chromium, served_after
from tests.support.browser_pages import CJK, accessible_in, chromium_context, password_step
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, codes_on, enable, now_code, post, secret_on, verified
from tests.support.journeys import mails
from tests.support.page_tour import BROWSER_LOCALES
from tests.support.pages import SESSION, csrf_token, session_opens, web_login
from userservice.wiring import wired

ADA = "ada@example.com"
ENROL, START = "/login/enrol", "/login/enrol/start"
TEXTS = {
    "en": (
        "Your account needs two-step verification before you can sign in: this service "
        "requires a second factor of your account. Set up an authenticator app or create a "
        "passkey to go on."
    ),
    # Between the sentence's full-width marks.
    "zh-Hans": "本服务要求您的账号使用第二验证因素",
}
HEADING = {"en": "Set up a second factor", "zh-Hans": "设置第二验证因素"}
EVERYONE_KEEPS = {
    "en": "This service requires two-step verification of every account: add a passkey",
    "zh-Hans": "请先添加通行密钥",
}
ACCEPT = {"en": "en", "zh-Hans": "zh-CN,zh;q=0.9"}


def _under_all(app: FastAPI) -> None:
    wired(app).mfa_policy.set_required_for("all", actor_id=uuid.uuid4(), ip=None)


def _start(client: TestClient, page: httpx.Response) -> httpx.Response:
    response: httpx.Response = client.post(
        START, data={"csrf_token": csrf_token(page.text)}, follow_redirects=False
    )
    return response


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_m13_a_plain_user_enrols_before_any_session(
    client: TestClient, app: FastAPI, lang: str
) -> None:
    user_id = uuid.UUID(register(client, ADA)["id"])
    verified(app, ADA)
    _under_all(app)
    client.headers["Accept-Language"] = ACCEPT[lang]
    password = web_login(client, ADA)
    assert password.status_code == 303 and password.headers["location"] == ENROL
    assert SESSION not in client.cookies
    opened = client.get(ENROL, follow_redirects=False)
    assert opened.status_code == 200, opened.text
    assert f'<html lang="{lang}">' in opened.text
    assert TEXTS[lang] in opened.text
    # Either factor will do (M8, M13): the heading names neither.
    assert f"<h1>{HEADING[lang]}</h1>" in opened.text
    assert "administrator" not in opened.text.lower() and "管理员" not in opened.text
    page = _start(client, opened)
    assert page.status_code == 200, page.text
    secret = secret_on(page.text)
    done = client.post(
        ENROL,
        data={"code": now_code(secret), "csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 200, done.text
    codes = codes_on(done.text)
    assert len(codes) == 10 and all(CODE_SHAPE.fullmatch(code) for code in codes)
    assert bool(CJK.search(done.text.split("<h1>", 1)[1][:40])) == (lang == "zh-Hans")
    raw = client.cookies.get(SESSION)
    assert raw and session_opens(app, raw)
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert wired(app).factors.summary(user_id).totp
    assert len(mails(app, to=ADA, kind="factor_added")) == 1
    # The next sign-in asks for the app's code.
    client.cookies.clear()
    assert web_login(client, ADA).headers["location"] == "/login/second-factor"


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_m3_m13_an_unverified_plain_user_must_verify_first(
    client: TestClient, app: FastAPI, lang: str
) -> None:
    register(client, ADA)
    _under_all(app)
    client.headers["Accept-Language"] = ACCEPT[lang]
    assert web_login(client, ADA).headers["location"] == ENROL
    page = client.get(ENROL, follow_redirects=False)
    assert page.status_code == 403
    if lang == "en":
        assert "Verify your email address first" in page.text
    assert 'href="/verify-email/resend"' in page.text
    assert f'action="{START}"' not in page.text and 'name="code"' not in page.text
    refused = _start(client, page)
    assert refused.status_code == 403 and 'id="totp-secret"' not in refused.text
    assert SESSION not in client.cookies


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_m13_the_account_page_keeps_a_plain_users_last_factor_on(
    client: TestClient, app: FastAPI, user: dict[str, Any], signed_in: str, lang: str
) -> None:
    verified(app, user["email"])
    enable(client)
    _under_all(app)  # the app is a factor: this session goes on
    client.headers["Accept-Language"] = ACCEPT[lang]
    refused = post(client, "/account/two-factor/remove", current_password=PASSWORD)
    assert refused.status_code == 409, refused.text
    assert EVERYONE_KEEPS[lang] in refused.text
    assert wired(app).factors.summary(uuid.UUID(user["id"])).totp


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base, pin): Ada, proven, with no factor, under `all`."""

    def prepare(client: TestClient, app: FastAPI) -> None:
        register(client, ADA, display_name="Ada")
        verified(app, ADA)
        _under_all(app)

    with served_after(sqlite_templates.fresh_url(tmp_path), tmp_path, prepare) as served_at:
        yield served_at


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_m13_forced_enrolment_of_a_plain_user_in_chromium(
    served: tuple[str, str], lang: str
) -> None:
    require_chromium()
    from playwright.sync_api import expect

    base, pin = served
    axe = axe_source()
    with chromium_context(pin, BROWSER_LOCALES[lang]) as context:
        page = context.new_page()
        page.goto(f"{base}/login")
        password_step(page, ADA)
        assert urlsplit(page.url).path == ENROL, page.url
        expect(page.locator("main p").filter(has_text=TEXTS[lang][:12])).to_have_count(1)
        accessible_in(page, axe, lang, "enrolment start page")
        page.locator(f"form[action='{START}'] button[type=submit]").click()
        expect(page.locator(".qr svg")).to_be_visible()
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
        accessible_in(page, axe, lang, "enrolment page")
        page.fill("#code", now_code(secret))
        page.locator(f"form[action='{ENROL}'] button[type=submit]").click()
        page.wait_for_load_state()
        codes = page.locator("#recovery-codes code").all_inner_texts()
        assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
        accessible_in(page, axe, lang, "recovery codes after enrolment")
        page.locator("a.button[href='/account']").click()
        page.wait_for_url(f"{base}/account")
        assert "__Host-session" in {c["name"] for c in context.cookies()}
