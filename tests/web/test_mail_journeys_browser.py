"""The ways in by mail, walked in a real headless Chromium against a real uvicorn over
TLS, with every mail delivered by the outbox's sender to a real SMTP server on
loopback (aiosmtpd) and its link followed: sign up → verify → sign in → forgot
password → reset → the old session and tokens are dead → sign in with the new
password. Once in English and once in Simplified Chinese (the browser's language),
with the mails in the language the person used on the pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.browser import launch, require_chromium
from tests.support.browser_pages import CJK, in_language
from tests.support.databases import SqliteTemplates
from tests.support.deployment import Deployment, deployed
from tests.support.mail_walk import (
    TIMEOUT_MS,
    in_process,
    sign_in,
    sign_in_fails_with,
)
from tests.support.smtp import Received
from userservice.settings import Settings

FIRST_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different tune on the old violin"


@pytest.fixture
def deployment(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(sqlite_templates.fresh_url(tmp_path), tmp_path) as running:
        yield running


@pytest.mark.browser
@pytest.mark.parametrize(("browser_locale", "lang"), [("en-GB", "en"), ("zh-CN", "zh-Hans")])
def test_sign_up_verify_forget_and_reset_in_chromium(
    deployment: Deployment, browser_locale: str, lang: str
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    email = f"walker-{lang.lower()}@example.com"
    with sync_playwright() as p:
        browser = launch(p, deployment.pin)
        try:
            first = browser.new_context(locale=browser_locale)
            second = browser.new_context(locale=browser_locale)
            for context in (first, second):
                context.set_default_timeout(TIMEOUT_MS)
            _walk(deployment, first.new_page(), second.new_page(), email, lang)
        finally:
            browser.close()


def _walk(deployment: Deployment, page: Any, other: Any, email: str, lang: str) -> None:
    from playwright.sync_api import expect

    verify = _sign_up_and_verify(deployment, page, email, lang)
    # Sign in; keep this browser's session and a pair of OAuth tokens to see them die.
    sign_in(page, deployment.base, email, FIRST_PASSWORD)
    expect(page.locator("#account-email")).to_have_text(email)
    tokens = _oauth_tokens(deployment.settings, email, FIRST_PASSWORD)
    reset_link = _forget_and_reset(deployment, other, email, lang)

    # A notice of the change arrives too.
    notice = deployment.mail(3, email)
    assert notice.message["Message-ID"] != verify.message["Message-ID"]

    # The first browser's session and the OAuth tokens are gone.
    page.goto(f"{deployment.base}/account")
    assert urlsplit(page.url).path == "/login"
    _tokens_are_dead(deployment.settings, tokens)

    # The old password no longer works; the new one does.
    sign_in(other, deployment.base, email, FIRST_PASSWORD)
    assert urlsplit(other.url).path == "/login"
    sign_in(other, deployment.base, email, NEW_PASSWORD)
    expect(other.locator("#account-email")).to_have_text(email)
    # The same reset link does not work twice: a clear page, and no form to send.
    response = other.goto(reset_link)
    assert response is not None and response.status == 400
    expect(other.locator("#password")).to_have_count(0)
    in_language(other, lang)
    sign_in_fails_with(deployment.settings, email, FIRST_PASSWORD)


def _sign_up_and_verify(deployment: Deployment, page: Any, email: str, lang: str) -> Received:
    """Sign up from the login page's link; verify through the mailed link."""
    page.goto(f"{deployment.base}/login")
    in_language(page, lang)
    page.click("a[href='/register']")
    assert urlsplit(page.url).path == "/register"
    in_language(page, lang)
    page.fill("#email", email)
    page.fill("#password", FIRST_PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    assert urlsplit(page.url).path == "/register/sent"
    in_language(page, lang)

    # The verification mail arrives over SMTP, in the page's language.
    verify = deployment.mail(1, email)
    assert verify.message["Content-Language"] == lang
    assert bool(CJK.search(verify.message["Subject"])) == (lang == "zh-Hans")
    assert not deployment.verified(email)
    page.goto(deployment.link(verify, "/verify-email"))
    in_language(page, lang)
    # Opening the link alone verifies nothing (mail scanners open links).
    assert not deployment.verified(email)
    page.click("form[action='/verify-email'] button[type=submit]")
    in_language(page, lang)
    assert deployment.verified(email)
    return verify


def _forget_and_reset(deployment: Deployment, other: Any, email: str, lang: str) -> str:
    """Forgot password, in another browser, from the login page's link; returns the
    reset link, used once."""
    from playwright.sync_api import expect

    other.goto(f"{deployment.base}/login")
    other.click("a[href='/forgot-password']")
    other.fill("#email", email)
    other.click("form[action='/forgot-password'] button[type=submit]")
    assert urlsplit(other.url).path == "/forgot-password/sent"
    reset = deployment.mail(2, email)
    assert reset.message["Content-Language"] == lang
    link = deployment.link(reset, "/reset-password")
    other.goto(link)
    other.fill("#password", NEW_PASSWORD)
    other.click("form[action='/reset-password'] button[type=submit]")
    # A reset signs nobody in: back to the login page, which says what happened.
    assert urlsplit(other.url).path == "/login"
    expect(other.locator(".notice")).to_be_visible()
    return link


def _oauth_tokens(settings: Settings, email: str, password: str) -> dict[str, str]:
    with in_process(settings) as client:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        me = client.get("/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["email_verified"] is True
        return body


def _tokens_are_dead(settings: Settings, tokens: dict[str, str]) -> None:
    with in_process(settings) as client:
        me = client.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 401, me.text
        refreshed = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 400, refreshed.text
        assert refreshed.json()["error"] == "invalid_grant"
