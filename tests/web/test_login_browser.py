"""The hosted login in a real headless Chromium against a real TLS server: the
redirect to /login, the session cookie, the account page and logout by POST, with
the pages' CSP and CSRF checks as a browser really meets them (F1, F4, F5, A11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.accounts import ISSUER, PASSWORD
from tests.support.browser import launch, require_chromium, served_with_user
from tests.support.databases import SqliteTemplates

EMAIL = "page-user@example.com"
TIMEOUT_MS = 20_000


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = sqlite_templates.fresh_url(tmp_path)
    with served_with_user(url, tmp_path, EMAIL, PASSWORD, ISSUER) as served_at:
        yield served_at


@pytest.mark.browser
def test_login_account_logout_in_chromium(served: tuple[str, str]) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, pin = served
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    requested: list[str] = []
    console: list[str] = []
    with sync_playwright() as p:
        # Accept exactly this server's key instead of switching certificate checks off.
        browser = launch(p, pin)
        try:
            context = browser.new_context()
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.on("console", lambda message: console.append(message.text))
            page.set_default_timeout(TIMEOUT_MS)
            try:
                _drive(page, context, base)
            finally:
                page.screenshot(path="/tmp/login-pages.png", full_page=True)
        finally:
            browser.close()

    foreign = [u for u in requested if not u.startswith(origin + "/")]
    assert foreign == [], f"requests to other origins: {foreign}"
    assert any(u == f"{origin}/static/pages.css" for u in requested)
    # The stylesheet and forms work under the pages' CSP: nothing was blocked.
    assert not [m for m in console if "Content Security Policy" in m], console


def _drive(page: object, context: object, base: str) -> None:
    from playwright.sync_api import BrowserContext, Page, expect

    assert isinstance(page, Page) and isinstance(context, BrowserContext)
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login", page.url
    assert urlsplit(page.url).query == "next=%2Faccount"
    # pages.css loaded despite default-src 'none' (style-src 'self').
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(243, 244, 246)"

    page.fill("#email", EMAIL)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("Incorrect email or password.")
    assert urlsplit(page.url).path == "/login"

    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#account-email")).to_have_text(EMAIL)
    assert urlsplit(page.url).path == "/account"

    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["__Host-session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
    assert session["path"] == "/" and session["domain"] == "127.0.0.1"
    assert cookies["__Host-csrf"]["sameSite"] == "Strict"

    # GET /logout only asks (F4); the session survives it.
    page.goto(f"{base}/logout")
    expect(page.get_by_role("heading", name="Sign out?")).to_be_visible()
    page.goto(f"{base}/account")
    expect(page.locator("#account-email")).to_have_text(EMAIL)

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"{base}/login")
    assert "__Host-session" not in {c["name"] for c in context.cookies()}

    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login", page.url

    # The old session id is dead on the server too (F5), not just gone from the jar.
    context.add_cookies(
        [
            {
                "name": "__Host-session",
                "value": session["value"],
                "url": base + "/",
                "secure": True,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    page.goto(f"{base}/account")
    assert urlsplit(page.url).path == "/login", page.url
