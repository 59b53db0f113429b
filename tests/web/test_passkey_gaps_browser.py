"""Passkeys where a second factor is asked for, in a real headless Chromium
against a real uvicorn over TLS, with the DevTools virtual authenticator (CTAP2,
internal, user verification), in English and Simplified Chinese; axe finds no
serious or critical violation on any page of the walk.

The walk, under the sign-in rule `all` (M13): the password of an account without
a factor leads to the forced enrolment, where a passkey is made instead of the
app (M8, M9): ten recovery codes once (M2), a session that says pwd only; sign
out; a passwordless sign-in with that passkey (amr hwk mfa, M10); then the
account's address changed with the passkey in place of the code (M7), the
confirming link mailed to the new address."""

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
from sqlalchemy import select

from tests.support.accounts import PASSWORD, register
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium, tls_server
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, verified
from tests.support.journeys import mails
from tests.support.page_tour import BROWSER_LOCALES, TIMEOUT_MS
from tests.support.server import free_port
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.services.assurance import loaded_amr
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"
NEW = "ada.new@example.com"
CJK = re.compile(r"[\u4e00-\u9fff]")
SESSION = "__Host-session"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str, FastAPI]]:
    """(public URL https://localhost:<port>, pin, an app on the same database),
    the rule `all` set before the server starts."""
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
        wired(app).mfa_policy.set_required_for("all", actor_id=uuid.uuid4(), ip=None)
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


def _authenticator(context: Any, page: Any) -> Any:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
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
    return cdp


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_forced_enrolment_with_a_passkey_then_passwordless_then_email_change(
    served: tuple[str, str, FastAPI], lang: str
) -> None:
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
            _authenticator(context, page)

            # M13: the password of an account without a factor leads to enrolment.
            page.goto(f"{base}/login")
            page.fill("#email", ADA)
            page.fill("#password", PASSWORD)
            page.locator("form[action='/login'] button[type=submit]").click()
            page.wait_for_url(f"{base}/login/enrol")
            expect(page.locator("#enrol-passkey")).to_be_visible()
            _accessible(page, axe, lang, "forced enrolment with a passkey offered")
            page.fill("#passkey_name", "Laptop")
            page.locator("#enrol-passkey").click()
            page.wait_for_url(f"{base}/login/enrol/passkey")
            codes = page.locator("#recovery-codes code").all_inner_texts()
            assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
            _accessible(page, axe, lang, "forced enrolment's recovery codes")
            # M8: a factor added on the strength of the password proves nothing more.
            assert _amr(app, context) == ("pwd",)
            page.locator("p.links a").click()
            page.wait_for_url(f"{base}/account")

            # Passwordless with the new passkey (M10: hwk mfa).
            page.locator("form[action='/logout'] button[type=submit]").last.click()
            page.wait_for_load_state()
            page.goto(f"{base}/login")
            page.locator("#passkey-sign-in").click()
            page.wait_for_url(f"{base}/account")
            assert _amr(app, context) == ("hwk", "mfa")

            # M7: the new address with the passkey in place of the code.
            expect(page.locator("#email-passkey")).to_be_visible()
            _accessible(page, axe, lang, "account page with the passkey address change")
            page.fill("#passkey_new_email", NEW)
            page.fill("#passkey_email_password", PASSWORD)
            page.locator("#email-passkey").click()
            page.wait_for_url(re.compile(r"/account\?done=email-sent"))
            assert urlsplit(page.url).path == "/account"
            assert len(mails(app, NEW, "email_change_verify")) == 1
            context.close()
        finally:
            browser.close()
