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
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from tests.support.accounts import PASSWORD
from tests.support.axe import axe_source
from tests.support.browser import require_chromium
from tests.support.browser_pages import accessible_in, chromium_context, password_step
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE
from tests.support.journeys import mails
from tests.support.page_tour import BROWSER_LOCALES
from tests.support.passkey_browser import (
    ADA,
    served_with_ada,
    session_amr,
    virtual_authenticator,
)

NEW = "ada.new@example.com"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str, FastAPI]]:
    """(public URL https://localhost:<port>, pin, an app on the same database),
    the rule `all` set before the server starts."""
    url = sqlite_templates.fresh_url(tmp_path)
    with served_with_ada(url, tmp_path, required_for="all") as served_at:
        yield served_at


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_forced_enrolment_with_a_passkey_then_passwordless_then_email_change(
    served: tuple[str, str, FastAPI], lang: str
) -> None:
    require_chromium()
    from playwright.sync_api import expect

    base, pin, app = served
    axe = axe_source()
    with chromium_context(pin, BROWSER_LOCALES[lang]) as context:
        page = context.new_page()
        virtual_authenticator(context, page)

        # M13: the password of an account without a factor leads to enrolment.
        page.goto(f"{base}/login")
        password_step(page, ADA)
        page.wait_for_url(f"{base}/login/enrol")
        expect(page.locator("#enrol-passkey")).to_be_visible()
        accessible_in(page, axe, lang, "forced enrolment with a passkey offered")
        page.fill("#passkey_name", "Laptop")
        page.locator("#enrol-passkey").click()
        page.wait_for_url(f"{base}/login/enrol/passkey")
        codes = page.locator("#recovery-codes code").all_inner_texts()
        assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
        accessible_in(page, axe, lang, "forced enrolment's recovery codes")
        # M8: a factor added on the strength of the password proves nothing more.
        assert session_amr(app, context) == ("pwd",)
        page.locator("p.links a").click()
        page.wait_for_url(f"{base}/account")

        # Passwordless with the new passkey (M10: hwk mfa).
        page.locator("form[action='/logout'] button[type=submit]").last.click()
        page.wait_for_load_state()
        page.goto(f"{base}/login")
        page.locator("#passkey-sign-in").click()
        page.wait_for_url(f"{base}/account")
        assert session_amr(app, context) == ("hwk", "mfa")

        # M7: the new address with the passkey in place of the code.
        expect(page.locator("#email-passkey")).to_be_visible()
        accessible_in(page, axe, lang, "account page with the passkey address change")
        page.fill("#passkey_new_email", NEW)
        page.fill("#passkey_email_password", PASSWORD)
        page.locator("#email-passkey").click()
        page.wait_for_url(re.compile(r"/account\?done=email-sent"))
        assert urlsplit(page.url).path == "/account"
        assert len(mails(app, NEW, "email_change_verify")) == 1
