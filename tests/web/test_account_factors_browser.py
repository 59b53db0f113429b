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
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.axe import axe_source
from tests.support.browser import require_chromium, served_after
from tests.support.browser_pages import accessible, chromium_context, in_language, path_of
from tests.support.databases import SqliteTemplates
from tests.support.factors import CODE_SHAPE, now_code, verified
from tests.support.page_tour import BROWSER_LOCALES, EMAIL

START, CONFIRM = "/account/two-factor/start", "/account/two-factor/confirm"
REMOVE = "/account/two-factor/remove"


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A TLS server holding Ada, whose address is verified."""

    def prepare(client: TestClient, app: FastAPI) -> None:
        register(client, EMAIL, display_name="Ada")
        verified(app, EMAIL)

    with served_after(sqlite_templates.fresh_url(tmp_path), tmp_path, prepare) as served_at:
        yield served_at


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
    base, pin = served
    axe = axe_source()
    with chromium_context(pin, BROWSER_LOCALES[lang]) as context:
        _walk(base, axe, lang, context.new_page())


def _walk(base: str, axe: str, lang: str, page: Any) -> None:
    from playwright.sync_api import expect

    _sign_in(page, base, None)
    expect(page.locator("#two-factor")).to_be_visible()
    in_language(page, lang)
    accessible(page, axe, "account, two-step verification off")

    # A wrong current password: the field says so, nothing starts.
    page.fill("#factor_password", "not the password")
    _submit(page, START)
    expect(page.locator("#factor_password-error")).to_be_visible()
    accessible(page, axe, "account, wrong current password")

    page.fill("#factor_password", PASSWORD)
    answer = _submit(page, START)
    assert answer.headers["cache-control"] == "no-store"
    in_language(page, lang)
    expect(page.locator(".qr svg")).to_be_visible()
    box = page.locator(".qr svg").bounding_box()
    assert box and box["width"] >= 120  # big enough for a phone's camera
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    accessible(page, axe, "setup page")

    page.fill("#code", "000000" if now_code(secret) != "000000" else "111111")
    _submit(page, CONFIRM)
    expect(page.locator("#code-error")).to_be_visible()
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    accessible(page, axe, "setup page, wrong code")

    page.fill("#code", now_code(secret))
    answer = _submit(page, CONFIRM)
    assert answer.headers["cache-control"] == "no-store"
    in_language(page, lang)
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(CODE_SHAPE.match(c) for c in codes)
    accessible(page, axe, "recovery codes page")

    page.locator("a[href='/account#two-factor']").click()
    page.wait_for_url(f"{base}/account#two-factor")
    expect(page.locator("#codes-left")).to_contain_text("10")
    assert not any(code in page.content() for code in codes)
    accessible(page, axe, "account, two-step verification on")

    # Signed out and in again: the password, then a code from the app (M4, M6).
    page.locator("form[action='/logout'] button[type=submit]").last.click()
    page.wait_for_url(f"{base}/login")
    _sign_in(page, base, secret)
    accessible(page, axe, "account, signed in with two steps")

    page.fill("#remove_password", PASSWORD)
    _submit(page, REMOVE)
    assert path_of(page) == "/account?done=two-factor-off"
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator(f"form[action='{START}']")).to_be_visible()
    in_language(page, lang)
    accessible(page, axe, "account, turned off")
