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
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import PASSWORD, register
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium, tls_server
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, verified
from tests.support.page_tour import BROWSER_LOCALES, TIMEOUT_MS
from tests.support.server import free_port
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.services.assurance import loaded_amr
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"
CJK = re.compile(r"[\u4e00-\u9fff]")
SESSION = "__Host-session"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str, FastAPI]]:
    """(public URL https://localhost:<port>, pin, an app on the same database)."""
    port = free_port()
    issuer = f"https://localhost:{port}"
    settings = Settings(
        _env_file=None,
        database_url=sqlite_templates.fresh_url(tmp_path),
        data_dir=tmp_path,
        issuer=issuer,
    )
    app = create_app(settings)
    with TestClient(app, base_url=issuer) as client:
        register(client, ADA, display_name="Ada")
        verified(app, ADA)
        # Served by its own app on the same database; `app` reads what it stored.
        with tls_server(settings, tmp_path, port=port) as (_base, pin):
            yield issuer, pin, app


def _amr(app: FastAPI, context: Any) -> tuple[str, ...]:
    raw = {c["name"]: c["value"] for c in context.cookies()}[SESSION]
    with wired(app).accounts.db.unit_of_work(read_only=True) as session:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw))
        return loaded_amr(session.execute(query).scalar_one())


def _accessible(page: Any, axe: str, lang: str, where: str) -> None:
    assert page.evaluate("document.documentElement.lang") == lang, where
    heading = page.locator("h1").first.inner_text()
    assert bool(CJK.search(heading)) == (lang == "zh-Hans"), heading
    found = violations(page, axe)
    assert found == [], f"{where}:\n{describe(found)}"


def _sign_out(page: Any, base: str) -> None:
    page.goto(f"{base}/account")
    page.locator("form[action='/logout'] button[type=submit]").last.click()
    page.wait_for_load_state()
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login"


def _password(page: Any) -> None:
    page.fill("#email", ADA)
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_passkey_walk_in_chromium(served: tuple[str, str, FastAPI], lang: str) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, pin, app = served
    axe = axe_source()
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            context = browser.new_context(locale=BROWSER_LOCALES[lang])
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            added = cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            authenticator = added["authenticatorId"]

            # A password sign-in; the account page offers to add a passkey.
            page.goto(f"{base}/login")
            expect(page.locator("#passkey-sign-in")).to_be_visible()
            _accessible(page, axe, lang, "sign-in page with the passkey button")
            _password(page)
            assert urlsplit(page.url).path == "/account", page.url
            expect(page.locator("#no-passkeys")).to_be_visible()
            _accessible(page, axe, lang, "account page without passkeys")
            page.fill("#passkey_name", "Laptop <b>1</b>")
            page.fill("#passkey_password", PASSWORD)
            page.locator("form[action='/account/passkeys/add'] button[type=submit]").click()
            page.wait_for_load_state()
            assert urlsplit(page.url).path == "/account/passkeys/add"
            expect(page.locator("#passkey-create")).to_be_visible()
            _accessible(page, axe, lang, "passkey creation page")
            page.locator("#passkey-create").click()
            page.wait_for_url(f"{base}/account/passkeys")
            codes = page.locator("#recovery-codes code").all_inner_texts()
            assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
            _accessible(page, axe, lang, "first passkey with recovery codes")
            stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
            assert len(stored["credentials"]) == 1
            assert stored["credentials"][0]["isResidentCredential"]

            page.goto(f"{base}/account#passkeys")
            listed = page.locator("ul.passkeys > li")
            expect(listed).to_have_count(1)
            expect(listed.locator("strong")).to_have_text("Laptop <b>1</b>")  # F7
            _accessible(page, axe, lang, "account page with a passkey")

            # Passwordless: the passkey alone, with user verification (M10).
            _sign_out(page, base)
            page.locator("#passkey-sign-in").click()
            page.wait_for_url(f"{base}/account")
            assert _amr(app, context) == ("hwk", "mfa")

            # The password, then the passkey as the second step (M6, M10).
            _sign_out(page, base)
            _password(page)
            assert urlsplit(page.url).path == "/login/second-factor", page.url
            expect(page.locator("#passkey-second-step")).to_be_visible()
            _accessible(page, axe, lang, "second step with a passkey")
            page.locator("#passkey-second-step").click()
            page.wait_for_url(f"{base}/account")
            assert _amr(app, context) == ("pwd", "hwk", "mfa")

            # Removed with the password; this browser goes on with the password alone.
            page.fill("#passkey-password-1", PASSWORD)
            page.locator("ul.passkeys form[action$='/remove'] button").click()
            page.wait_for_load_state()
            expect(page.locator("#no-passkeys")).to_be_visible()
            assert _amr(app, context) == ("pwd",)
            context.close()
        finally:
            browser.close()


@pytest.mark.browser
def test_a_cancelled_ceremony_shows_the_pages_own_message(
    served: tuple[str, str, FastAPI],
) -> None:
    """No authenticator answers (none is attached): the page shows its hidden
    message, no alert, and nothing is sent."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, pin, _app = served
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            context = browser.new_context(locale="en-US")
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            # An authenticator without the passkey: Chromium's "no passkey" answer.
            cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "usb",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            dialogs: list[str] = []
            page.on("dialog", lambda d: dialogs.append(d.message))
            page.goto(f"{base}/login")
            page.locator("#passkey-sign-in").click()
            expect(page.locator("#passkey-failed")).to_be_visible(timeout=TIMEOUT_MS * 3)
            expect(page.locator("#passkey-failed")).to_have_class(re.compile(r"\berror\b"))
            assert urlsplit(page.url).path == "/login" and dialogs == []
            context.close()
        finally:
            browser.close()


@pytest.mark.browser
def test_without_javascript_the_pages_work_as_before(served: tuple[str, str, FastAPI]) -> None:
    """Progressive enhancement (M9): with scripts off the passkey forms stay hidden,
    the account page says why it offers none, and the password signs in."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, pin, _app = served
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            context = browser.new_context(locale="en-US", java_script_enabled=False)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{base}/login")
            expect(page.locator("#passkey-sign-in")).to_be_hidden()
            _password(page)
            assert urlsplit(page.url).path == "/account", page.url
            expect(page.locator("#passkeys [data-passkey-missing]")).to_be_visible()
            expect(page.locator("form[action='/account/passkeys/add']")).to_be_hidden()
            context.close()
        finally:
            browser.close()
