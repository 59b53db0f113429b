"""The account page in a real headless Chromium against a real uvicorn over TLS, in
English and in Simplified Chinese: two browsers signed in, rename, change the
password (this browser stays signed in, the other is signed out, L28), end the
other session (L22), withdraw an app (L24), a refused form, sign out everywhere
(L23); axe finds no serious or critical violation on any of those pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from tests.support.axe import axe_source
from tests.support.browser import launch, require_chromium, served_after
from tests.support.browser_pages import accessible, in_language, path_of
from tests.support.callers import add_third_party, third_party_token
from tests.support.databases import SqliteTemplates
from tests.support.oauth_flow import signed_in
from tests.support.page_tour import BROWSER_LOCALES, EMAIL, TIMEOUT_MS

NEW_PASSWORD = "a different tune on the old violin"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A TLS server holding Ada, who let the third-party app act for her."""

    def prepare(client: TestClient, _app: FastAPI) -> None:
        signed_in(client)
        add_third_party(client)
        third_party_token(client, "openid profile offline_access")

    with served_after(sqlite_templates.fresh_url(tmp_path), tmp_path, prepare) as served_at:
        yield served_at


def _sign_in(page: Any, base: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login?force=1")
    page.fill("#email", EMAIL)
    page.fill("#password", password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base}/account")


def _submit(page: Any, action: str) -> None:
    page.locator(f"form[action='{action}'] button[type=submit]").click()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_account_page_in_chromium(served: tuple[str, str], lang: str) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, pin = served
    axe = axe_source()
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            pages = []
            for _ in range(2):
                context = browser.new_context(locale=BROWSER_LOCALES[lang])
                context.set_default_timeout(TIMEOUT_MS)
                pages.append(context.new_page())
            _walk(base, axe, lang, *pages)
        finally:
            browser.close()


def _walk(base: str, axe: str, lang: str, page: Any, other: Any) -> None:
    from playwright.sync_api import expect

    _sign_in(page, base)
    _sign_in(other, base)
    page.goto(f"{base}/account")
    in_language(page, lang)
    # Both browsers, and the session that arranged the grant.
    expect(page.locator("ul.sessions > li")).to_have_count(3)
    expect(page.locator("ul.sessions .current")).to_have_count(1)
    expect(page.locator("ul.grants > li")).to_have_count(1)
    accessible(page, axe, "account")

    page.fill("#display_name", "Ada Byron")
    _submit(page, "/account/profile")
    assert path_of(page) == "/account?done=profile"
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("#display_name")).to_have_value("Ada Byron")

    # L28: this browser stays signed in; the other one is signed out.
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEW_PASSWORD)
    _submit(page, "/account/password")
    assert path_of(page) == "/account?done=password"
    expect(page.locator("ul.sessions > li")).to_have_count(1)
    other.goto(f"{base}/account")
    assert urlsplit(other.url).path == "/login"

    # L22: the other browser again, then ended from here.
    _sign_in(other, base, NEW_PASSWORD)
    page.goto(f"{base}/account")
    expect(page.locator("ul.sessions > li")).to_have_count(2)
    page.locator("ul.sessions > li:not(:has(.current)) button[type=submit]").click()
    assert path_of(page) == "/account?done=session-ended"
    expect(page.locator("ul.sessions > li")).to_have_count(1)
    other.goto(f"{base}/account")
    assert urlsplit(other.url).path == "/login"

    # L24: withdraw the app.
    page.locator("ul.grants form button[type=submit]").click()
    assert path_of(page) == "/account?done=app-withdrawn"
    expect(page.locator("#no-grants")).to_be_visible()
    accessible(page, axe, "account after the changes")

    # A refused form: the page again, the field marked, still accessible.
    page.fill("#new_email", "new@example.com")
    page.fill("#email_password", "not the password")
    _submit(page, "/account/email")
    expect(page.locator("#email_password-error")).to_be_visible()
    expect(page.locator("#email_password")).to_have_attribute("aria-invalid", "true")
    in_language(page, lang)
    accessible(page, axe, "account with a refused form")

    # L23: sign out everywhere, this browser too.
    _submit(page, "/account/sessions/end-all")
    assert path_of(page) == "/login?signed_out=everywhere"
    expect(page.locator(".notice")).to_be_visible()
    in_language(page, lang)
    accessible(page, axe, "signed out everywhere")
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login"
