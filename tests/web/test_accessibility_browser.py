"""axe-core in Chromium on every hosted page, in English and in Simplified Chinese:
no serious or critical violation; the sign-in form and the language switch work
by keyboard alone; the page says which language it is in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.accounts import PASSWORD
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium
from tests.support.databases import SqliteTemplates
from tests.support.page_tour import BROWSER_LOCALES, EMAIL, STOPS, TIMEOUT_MS, tour, tour_server
from userservice.i18n import LOCALES


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with tour_server(sqlite_templates.fresh_url(tmp_path), tmp_path) as served_at:
        yield served_at


@pytest.fixture
def browser(served: tuple[str, str]) -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p, served[1])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.browser
@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_passes_axe(
    axe: str, served: tuple[str, str], browser: Any, locale: str
) -> None:
    base = served[0]
    failures: dict[str, str] = {}
    seen = []
    for stop, page in tour(browser, base, locale):
        seen.append(stop.name)
        assert page.evaluate("document.documentElement.lang") == locale, stop.name
        found = violations(page, axe)
        if found:
            failures[stop.name] = describe(found)
    assert seen == [s.name for s in sorted(STOPS, key=lambda s: s.signed_in)]
    assert failures == {}, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


@pytest.mark.browser
def test_axe_finds_what_it_should(axe: str, served: tuple[str, str], browser: Any) -> None:
    # The check above is only as good as this run of axe: an unlabeled field and
    # text too faint to read on our own page are found.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(served[0] + "/login")
        page.evaluate(
            """() => {
                document.querySelector('label[for=email]').remove();
                document.querySelector('h1').style.color = '#ddd';
            }"""
        )
        ids = {v["id"] for v in violations(page, axe)}
    finally:
        context.close()
    assert {"label", "color-contrast"} <= ids


@pytest.mark.browser
def test_sign_in_by_keyboard_alone(served: tuple[str, str], browser: Any) -> None:
    from playwright.sync_api import expect

    base = served[0]
    context = browser.new_context(locale=BROWSER_LOCALES["en"])
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/login")
        focused = "() => document.activeElement && document.activeElement.id"
        assert page.evaluate(focused) == "email"  # autofocus: typing starts here
        page.keyboard.type(EMAIL)
        page.keyboard.press("Tab")
        assert page.evaluate(focused) == "password"
        page.keyboard.type("not the password")
        page.keyboard.press("Enter")
        error = page.locator("#form-error")
        expect(error).to_be_visible()
        # The error is tied to the fields it concerns, so a screen reader says it there.
        password = page.locator("#password")
        expect(password).to_have_attribute("aria-invalid", "true")
        expect(password).to_have_attribute("aria-describedby", "form-error")
        page.focus("#password")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/account")
    finally:
        context.close()


@pytest.mark.browser
def test_switch_language_by_keyboard(served: tuple[str, str], browser: Any) -> None:
    from playwright.sync_api import expect

    base = served[0]
    context = browser.new_context(locale=BROWSER_LOCALES["en"])
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/login?login_hint=" + EMAIL)
        switch = page.locator("nav.language button[lang=zh-Hans]")
        # Tab from the last field of the form reaches the switch, in page order.
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.getAttribute('lang')") == "zh-Hans":
                break
        expect(switch).to_be_focused()
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("h1")).to_have_text("登录")
        assert "login_hint=" in page.url  # back on the same page
        # Remembered: a new page in this browser stays in Chinese.
        page.goto(base + "/forgot-password")
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    finally:
        context.close()
