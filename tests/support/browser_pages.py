"""Checks and steps the Chromium tests of the hosted pages share: a browser
context, the page's language (its lang attribute and its heading's script), axe's
verdict, the path a page ended on, and the password form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.support.accounts import PASSWORD
from tests.support.axe import describe, violations
from tests.support.browser import launch
from tests.support.page_tour import TIMEOUT_MS

CJK = re.compile(r"[\u4e00-\u9fff]")


@contextmanager
def chromium_context(pin: str, locale: str, **options: Any) -> Iterator[Any]:
    """A context of a headless Chromium that accepts exactly the test server's
    pin, in `locale` (with Playwright's new_context `options`), at the tests'
    timeout; closed, and the browser with it, when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            context = browser.new_context(locale=locale, **options)
            context.set_default_timeout(TIMEOUT_MS)
            yield context
            context.close()
        finally:
            browser.close()


def path_of(page: Any) -> str:
    """The page's path, with its query if it has one."""
    parts = urlsplit(str(page.url))
    return parts.path + ("?" + parts.query if parts.query else "")


def in_language(page: Any, lang: str, where: str = "") -> None:
    assert page.evaluate("document.documentElement.lang") == lang, where
    heading = page.locator("h1").first.inner_text()
    assert bool(CJK.search(heading)) == (lang == "zh-Hans"), heading


def accessible(page: Any, axe: str, where: str) -> None:
    """axe finds no serious or critical violation on the page."""
    found = violations(page, axe)
    assert found == [], f"{where}:\n{describe(found)}"


def accessible_in(page: Any, axe: str, lang: str, where: str) -> None:
    """The page in `lang`, and accessible."""
    in_language(page, lang, where)
    accessible(page, axe, where)


def password_step(page: Any, email: str, password: str = PASSWORD) -> None:
    """Fill the sign-in form on the page and send it; wait for the next page."""
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()
