"""The two-step sign-in in a real headless Chromium against a real uvicorn over
TLS, in English and in Simplified Chinese: the password, then a code pyotp
computes from the account's key (M6); the half-login cookie as Chromium keeps it
(`__Host-`, Secure, HttpOnly, Strict) with no session until the code; an
administrator the policy requires to enrol sets up the app from the key on the
page and sees the recovery codes once (M8, M2). axe finds no serious or critical
violation on any of those pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import make_admin, register
from tests.support.axe import axe_source
from tests.support.browser import launch, require_chromium, served_after
from tests.support.browser_pages import accessible_in, password_step
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, now_code, verified, wrong_code
from tests.support.page_tour import BROWSER_LOCALES, TIMEOUT_MS
from userservice.wiring import wired

ADA = "ada@example.com"  # has an authenticator app
ROOT = "root@example.com"  # an administrator without one, under the policy


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base, pin, Ada's key)."""
    secrets: list[str] = []

    def prepare(client: TestClient, app: FastAPI) -> None:
        secrets.append(_with_app(app, uuid.UUID(register(client, ADA, display_name="Ada")["id"])))
        make_admin(app, ROOT)
        verified(app, ROOT)
        wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)

    with served_after(sqlite_templates.fresh_url(tmp_path), tmp_path, prepare) as (base, pin):
        yield base, pin, secrets[0]


def _with_app(app: FastAPI, user_id: uuid.UUID) -> str:
    verified(app, ADA)
    factors = wired(app).factors
    secret = factors.start_totp(user_id, ip=None).secret
    # The previous step's code: the current one stays for the browser to use.
    factors.confirm_totp(user_id, now_code(secret, -1), ip=None, locale="en")
    return secret


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_two_step_sign_in_in_chromium(served: tuple[str, str, str], lang: str) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, pin, secret = served
    axe = axe_source()
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            for walk in (_code_walk, _enrol_walk):
                context = browser.new_context(locale=BROWSER_LOCALES[lang])
                context.set_default_timeout(TIMEOUT_MS)
                try:
                    walk(base, axe, lang, context, secret)
                finally:
                    context.close()
        finally:
            browser.close()


def _code_walk(base: str, axe: str, lang: str, context: Any, secret: str) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login"
    password_step(page, ADA)
    assert urlsplit(page.url).path == "/login/second-factor", page.url
    cookies = {c["name"]: c for c in context.cookies()}
    assert "__Host-session" not in cookies and "__Host-device" not in cookies
    half = cookies["__Host-half-login"]
    assert half["secure"] and half["httpOnly"] and half["sameSite"] == "Strict"
    assert half["path"] == "/" and half["expires"] == -1  # ends with the browser
    code = page.locator("#code")
    expect(code).to_be_focused()  # typing starts in the one field
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    accessible_in(page, axe, lang, "second-factor page")

    # The half-login opens nothing: the account page still asks for the password.
    other = context.new_page()
    other.goto(f"{base}/account")
    assert urlsplit(other.url).path == "/login"
    other.close()

    code.fill(wrong_code(secret))
    page.locator("form[action='/login/second-factor'] button[type=submit]").click()
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    accessible_in(page, axe, lang, "second-factor page, wrong code")

    page.fill("#code", now_code(secret))
    page.locator("form[action='/login/second-factor'] button[type=submit]").click()
    page.wait_for_url(f"{base}/account")
    names = {c["name"] for c in context.cookies()}
    assert "__Host-session" in names and "__Host-half-login" not in names


def _enrol_walk(base: str, axe: str, lang: str, context: Any, _secret: str) -> None:
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{base}/login")
    password_step(page, ROOT)
    assert urlsplit(page.url).path == "/login/enrol", page.url
    # Opening the page makes no key: the start button's POST does (M8).
    expect(page.locator(".qr svg")).to_have_count(0)
    accessible_in(page, axe, lang, "enrolment start page")
    page.locator("form[action='/login/enrol/start'] button[type=submit]").click()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert "__Host-session" not in {c["name"] for c in context.cookies()}
    accessible_in(page, axe, lang, "enrolment page")

    page.fill("#code", now_code(secret))
    page.locator("form[action='/login/enrol'] button[type=submit]").click()
    page.wait_for_load_state()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
    accessible_in(page, axe, lang, "recovery codes after enrolment")

    page.locator("a.button[href='/account']").click()
    page.wait_for_url(f"{base}/account")
    assert "__Host-session" in {c["name"] for c in context.cookies()}
