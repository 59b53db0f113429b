"""Two-step verification in a real headless Chromium against a real uvicorn over
TLS, in English and in Simplified Chinese: the key read from the setup page as a
person would type it into an app, the app turned on with a code pyotp computes
from it (M1), the ten codes shown once on a page no cache keeps (M2), a sign-in
again with the password and a code (M4, M6), and the app turned off (M3); axe
finds no serious or critical violation on any of those pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, PASSWORD, register
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium, tls_server
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, now_code, verified
from tests.support.page_tour import BROWSER_LOCALES, EMAIL, TIMEOUT_MS
from userservice.app import create_app
from userservice.settings import Settings

CJK = re.compile(r"[\u4e00-\u9fff]")
START, CONFIRM = "/account/two-factor/start", "/account/two-factor/confirm"
REMOVE = "/account/two-factor/remove"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A TLS server holding Ada, whose address is verified."""
    settings = Settings(
        _env_file=None,
        database_url=sqlite_templates.fresh_url(tmp_path),
        data_dir=tmp_path,
        issuer=ISSUER,
    )
    app = create_app(settings)
    with TestClient(app, base_url=ISSUER) as client:
        register(client, EMAIL, display_name="Ada")
        verified(app, EMAIL)
    with tls_server(settings, tmp_path) as served_at:
        yield served_at


def _path(page: Any) -> str:
    parts = urlsplit(page.url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _in_language(page: Any, lang: str) -> None:
    assert page.evaluate("document.documentElement.lang") == lang
    heading = page.locator("h1").first.inner_text()
    assert bool(CJK.search(heading)) == (lang == "zh-Hans"), heading


def _accessible(page: Any, axe: str, where: str) -> None:
    found = violations(page, axe)
    assert found == [], f"{where}:\n{describe(found)}"


def _submit(page: Any, action: str) -> Any:
    """Press the form's button; the answer to its POST (for its headers)."""
    with page.expect_response(lambda r: urlsplit(r.url).path == action) as answer:
        page.locator(f"form[action='{action}'] button[type=submit]").click()
    page.wait_for_load_state()
    return answer.value


def _sign_in(page: Any, base: str, secret: str | None) -> None:
    page.goto(f"{base}/login?force=1")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()
    if secret is not None:
        # M4, M6: the password alone is not enough; the next step asks for a code.
        assert urlsplit(page.url).path == "/login/second-factor", page.url
        page.fill("#code", now_code(secret, ahead=1))
        page.locator("form[action='/login/second-factor'] button[type=submit]").click()
    page.wait_for_url(f"{base}/account")


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_two_step_verification_in_chromium(served: tuple[str, str], lang: str) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, pin = served
    axe = axe_source()
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            context = browser.new_context(locale=BROWSER_LOCALES[lang])
            context.set_default_timeout(TIMEOUT_MS)
            _walk(base, axe, lang, context.new_page())
        finally:
            browser.close()


def _walk(base: str, axe: str, lang: str, page: Any) -> None:
    from playwright.sync_api import expect

    _sign_in(page, base, None)
    expect(page.locator("#two-factor")).to_be_visible()
    _in_language(page, lang)
    _accessible(page, axe, "account, two-step verification off")

    # A wrong current password: the field says so, nothing starts.
    page.fill("#factor_password", "not the password")
    _submit(page, START)
    expect(page.locator("#factor_password-error")).to_be_visible()
    _accessible(page, axe, "account, wrong current password")

    page.fill("#factor_password", PASSWORD)
    answer = _submit(page, START)
    assert answer.headers["cache-control"] == "no-store"
    _in_language(page, lang)
    expect(page.locator(".qr svg")).to_be_visible()
    box = page.locator(".qr svg").bounding_box()
    assert box and box["width"] >= 120  # big enough for a phone's camera
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    _accessible(page, axe, "setup page")

    page.fill("#code", "000000" if now_code(secret) != "000000" else "111111")
    _submit(page, CONFIRM)
    expect(page.locator("#code-error")).to_be_visible()
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    _accessible(page, axe, "setup page, wrong code")

    page.fill("#code", now_code(secret))
    answer = _submit(page, CONFIRM)
    assert answer.headers["cache-control"] == "no-store"
    _in_language(page, lang)
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
    _accessible(page, axe, "recovery codes page")

    page.locator("a[href='/account#two-factor']").click()
    page.wait_for_url(f"{base}/account#two-factor")
    expect(page.locator("#codes-left")).to_contain_text("10")
    assert not any(code in page.content() for code in codes)
    _accessible(page, axe, "account, two-step verification on")

    # Signed out and in again: the password, then a code from the app (M4, M6).
    page.locator("form[action='/logout'] button[type=submit]").last.click()
    page.wait_for_url(f"{base}/login")
    _sign_in(page, base, secret)
    _accessible(page, axe, "account, signed in with two steps")

    page.fill("#remove_password", PASSWORD)
    _submit(page, REMOVE)
    assert _path(page) == "/account?done=two-factor-off"
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator(f"form[action='{START}']")).to_be_visible()
    _in_language(page, lang)
    _accessible(page, axe, "account, turned off")
