"""Passkeys in a real headless Chromium (M9, M10) against a real uvicorn over TLS,
with the DevTools virtual authenticator (CTAP2, internal, user verification) in
place of a phone or security key, in English and Simplified Chinese.

WebAuthn needs a secure context and a relying party id that is a domain: the
server's public URL is https://localhost:<port>, and Chromium accepts exactly the
test server's certificate by its SPKI pin (certificate checks stay on). The local
script (web/static/passkey.js) does the WebAuthn calls under the pages' CSP
(script-src 'self').

The walk: a password sign-in, a passkey made on the account page (the first
factor, so the ten recovery codes once, M2), sign out, passwordless sign-in with
the passkey (amr hwk mfa), sign out, the password then the passkey as second step
(amr pwd hwk mfa), the passkey removed. axe finds no serious or critical
violation on any passkey page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from tests.support.accounts import PASSWORD
from tests.support.axe import axe_source
from tests.support.browser import require_chromium
from tests.support.browser_pages import accessible_in, chromium_context, password_step
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE
from tests.support.page_tour import BROWSER_LOCALES, TIMEOUT_MS
from tests.support.passkey_browser import (
    ADA,
    served_with_ada,
    session_amr,
    virtual_authenticator,
)


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str, FastAPI]]:
    """(public URL https://localhost:<port>, pin, an app on the same database)."""
    with served_with_ada(sqlite_templates.fresh_url(tmp_path), tmp_path) as served_at:
        yield served_at


def _sign_out(page: Any, base: str) -> None:
    page.goto(f"{base}/account")
    page.locator("form[action='/logout'] button[type=submit]").last.click()
    page.wait_for_load_state()
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login"


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_passkey_walk_in_chromium(served: tuple[str, str, FastAPI], lang: str) -> None:
    require_chromium()
    from playwright.sync_api import expect

    base, pin, app = served
    axe = axe_source()
    with chromium_context(pin, BROWSER_LOCALES[lang]) as context:
        page = context.new_page()
        cdp, authenticator = virtual_authenticator(context, page)

        # A password sign-in; the account page offers to add a passkey.
        page.goto(f"{base}/login")
        expect(page.locator("#passkey-sign-in")).to_be_visible()
        accessible_in(page, axe, lang, "sign-in page with the passkey button")
        password_step(page, ADA)
        assert urlsplit(page.url).path == "/account", page.url
        expect(page.locator("#no-passkeys")).to_be_visible()
        accessible_in(page, axe, lang, "account page without passkeys")
        page.fill("#passkey_name", "Laptop <b>1</b>")
        page.fill("#passkey_password", PASSWORD)
        page.locator("form[action='/account/passkeys/add'] button[type=submit]").click()
        page.wait_for_load_state()
        assert urlsplit(page.url).path == "/account/passkeys/add"
        expect(page.locator("#passkey-create")).to_be_visible()
        accessible_in(page, axe, lang, "passkey creation page")
        page.locator("#passkey-create").click()
        page.wait_for_url(f"{base}/account/passkeys")
        codes = page.locator("#recovery-codes code").all_inner_texts()
        assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
        accessible_in(page, axe, lang, "first passkey with recovery codes")
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert len(stored["credentials"]) == 1
        assert stored["credentials"][0]["isResidentCredential"]

        page.goto(f"{base}/account#passkeys")
        listed = page.locator("ul.passkeys > li")
        expect(listed).to_have_count(1)
        expect(listed.locator("strong")).to_have_text("Laptop <b>1</b>")  # F7
        accessible_in(page, axe, lang, "account page with a passkey")

        # Passwordless: the passkey alone, with user verification (M10).
        _sign_out(page, base)
        page.locator("#passkey-sign-in").click()
        page.wait_for_url(f"{base}/account")
        assert session_amr(app, context) == ("hwk", "mfa")

        # The password, then the passkey as the second step (M6, M10).
        _sign_out(page, base)
        password_step(page, ADA)
        assert urlsplit(page.url).path == "/login/second-factor", page.url
        expect(page.locator("#passkey-second-step")).to_be_visible()
        accessible_in(page, axe, lang, "second step with a passkey")
        page.locator("#passkey-second-step").click()
        page.wait_for_url(f"{base}/account")
        assert session_amr(app, context) == ("pwd", "hwk", "mfa")

        # Removed with the password; this browser goes on with the password alone.
        page.fill("#passkey-password-1", PASSWORD)
        page.locator("ul.passkeys form[action$='/remove'] button").click()
        page.wait_for_load_state()
        expect(page.locator("#no-passkeys")).to_be_visible()
        assert session_amr(app, context) == ("pwd",)


@pytest.mark.browser
def test_a_cancelled_ceremony_shows_the_pages_own_message(
    served: tuple[str, str, FastAPI],
) -> None:
    """No authenticator answers (none is attached): the page shows its hidden
    message, no alert, and nothing is sent."""
    require_chromium()
    from playwright.sync_api import expect

    base, pin, _app = served
    with chromium_context(pin, "en-US") as context:
        page = context.new_page()
        # An authenticator without the passkey: Chromium's "no passkey" answer.
        virtual_authenticator(context, page, transport="usb")
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        page.goto(f"{base}/login")
        page.locator("#passkey-sign-in").click()
        expect(page.locator("#passkey-failed")).to_be_visible(timeout=TIMEOUT_MS * 3)
        expect(page.locator("#passkey-failed")).to_have_class(re.compile(r"\berror\b"))
        assert urlsplit(page.url).path == "/login" and dialogs == []


@pytest.mark.browser
def test_without_javascript_the_pages_work_as_before(served: tuple[str, str, FastAPI]) -> None:
    """Progressive enhancement (M9): with scripts off the passkey forms stay hidden,
    the account page says why it offers none, and the password signs in."""
    require_chromium()
    from playwright.sync_api import expect

    base, pin, _app = served
    with chromium_context(pin, "en-US", java_script_enabled=False) as context:
        page = context.new_page()
        page.goto(f"{base}/login")
        expect(page.locator("#passkey-sign-in")).to_be_hidden()
        password_step(page, ADA)
        assert urlsplit(page.url).path == "/account", page.url
        expect(page.locator("#passkeys [data-passkey-missing]")).to_be_visible()
        expect(page.locator("form[action='/account/passkeys/add']")).to_be_hidden()
