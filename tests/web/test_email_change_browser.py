"""The email change walked in a real headless Chromium against a real uvicorn over
TLS, every mail delivered over SMTP (aiosmtpd on loopback) and its link followed:
ask for a new address → the new address's mail → confirm on its page → the old
address's notice, the new one masked → undo on its page → every session ended →
a new password from the mailed reset link → sign in. In English and in Simplified
Chinese, each page axe-clean (L20, L21)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.support.accounts import PASSWORD as FIRST_PASSWORD
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium
from tests.support.browser_pages import CJK, in_language
from tests.support.databases import SqliteTemplates
from tests.support.deployment import Deployment, deployed
from tests.support.mail_walk import TIMEOUT_MS, sign_in, sign_in_fails_with
from userservice.db.models import User

NEW_PASSWORD = "a different tune on the old violin"


@pytest.fixture
def deployment(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(sqlite_templates.fresh_url(tmp_path), tmp_path) as running:
        yield running


@pytest.mark.browser
@pytest.mark.parametrize(("browser_locale", "lang"), [("en-GB", "en"), ("zh-CN", "zh-Hans")])
def test_change_confirm_undo_and_reset_in_chromium(
    deployment: Deployment, browser_locale: str, lang: str
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    axe = axe_source()
    old, new = f"walker-{lang.lower()}@example.com", f"moved-{lang.lower()}@example.org"
    with httpx.Client(
        base_url=deployment.base,
        verify=ssl.create_default_context(cafile=str(deployment.ca)),
        headers={"Accept-Language": browser_locale},
    ) as http:
        created = http.post("/users", json={"email": old, "password": FIRST_PASSWORD})
        assert created.status_code == 201, created.text
        with sync_playwright() as p:
            browser = launch(p, deployment.pin)
            try:
                first = browser.new_context(locale=browser_locale)
                second = browser.new_context(locale=browser_locale)
                for context in (first, second):
                    context.set_default_timeout(TIMEOUT_MS)
                page, other = first.new_page(), second.new_page()
                sign_in(page, deployment.base, old, FIRST_PASSWORD)
                assert urlsplit(page.url).path == "/account"
                body = {"email": new, "current_password": FIRST_PASSWORD}
                asked = http.post("/users/me/email", json=body, auth=(old, FIRST_PASSWORD))
                assert asked.status_code == 202, asked.text
                _confirm(deployment, other, axe, old, new, lang)
                _undo(deployment, other, axe, old, new, lang)
                # Every session ended with the undo: this browser's is gone.
                page.goto(f"{deployment.base}/account")
                assert urlsplit(page.url).path == "/login"
                _reset(deployment, other, axe, old, lang)
            finally:
                browser.close()
    sign_in_fails_with(deployment.settings, new, FIRST_PASSWORD)
    sign_in_fails_with(deployment.settings, old, FIRST_PASSWORD)


def _has_account(deployment: Deployment, email: str) -> bool:
    engine = create_engine(deployment.settings.resolved_database_url())
    try:
        with engine.connect() as conn:
            return conn.execute(select(User.id).where(User.email == email)).first() is not None
    finally:
        engine.dispose()


def _clean(page: Any, axe: str, lang: str) -> None:
    in_language(page, lang)
    found = violations(page, axe)
    assert found == [], describe(found)


def _confirm(deployment: Deployment, page: Any, axe: str, old: str, new: str, lang: str) -> None:
    # Mail 1 verified the sign-up; mail 2 goes to the new address, never to the old.
    mail = deployment.mail(2, new)
    assert mail.message["Content-Language"] == lang
    assert bool(CJK.search(mail.message["Subject"])) == (lang == "zh-Hans")
    assert not [m for m in deployment.smtp.inbox.wait_for(2)[1:] if old in m.recipients]
    page.goto(deployment.link(mail, "/confirm-email-change"))
    _clean(page, axe, lang)
    assert not _has_account(deployment, new)  # opening the link changes nothing
    page.click("form[action='/confirm-email-change'] button[type=submit]")
    _clean(page, axe, lang)
    assert new in page.locator("[role=status]").inner_text()
    assert deployment.verified(new)


def _undo(deployment: Deployment, page: Any, axe: str, old: str, new: str, lang: str) -> None:
    notice = deployment.mail(3, old)
    assert notice.message["Content-Language"] == lang
    # The new address is named only partly: whoever reads the old mailbox learns
    # little of it.
    assert new not in notice.text and new not in notice.html
    assert f"m•••@{new.split('@')[1]}" in notice.text
    page.goto(deployment.link(notice, "/undo-email-change"))
    _clean(page, axe, lang)
    page.click("form[action='/undo-email-change'] button[type=submit]")
    _clean(page, axe, lang)
    assert deployment.verified(old)
    # A second use gets the clear refusal, and no button.
    response = page.goto(deployment.link(notice, "/undo-email-change"))
    assert response is not None and response.status == 400
    assert page.locator("form[action='/undo-email-change']").count() == 0
    _clean(page, axe, lang)


def _reset(deployment: Deployment, page: Any, axe: str, old: str, lang: str) -> None:
    from playwright.sync_api import expect

    reset = deployment.mail(4, old)
    assert reset.message["Content-Language"] == lang
    page.goto(deployment.link(reset, "/reset-password"))
    _clean(page, axe, lang)
    page.fill("#password", NEW_PASSWORD)
    page.click("form[action='/reset-password'] button[type=submit]")
    assert urlsplit(page.url).path == "/login"
    sign_in(page, deployment.base, old, NEW_PASSWORD)
    expect(page.locator("#account-email")).to_have_text(old)
