"""/docs in a real headless Chromium against a real TLS server: Swagger UI loads
from our own origin only (A11), and its Authorize button logs in with the OAuth2
password flow so that protected operations can be tried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.accounts import ISSUER, PASSWORD
from tests.support.browser import launch, require_chromium, served_with_user
from tests.support.databases import SqliteTemplates

EMAIL = "docs-user@example.com"
TIMEOUT_MS = 20_000


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = sqlite_templates.fresh_url(tmp_path)
    with served_with_user(url, tmp_path, EMAIL, PASSWORD, ISSUER) as served_at:
        yield served_at


@pytest.mark.browser
def test_docs_authorize_with_password_flow_and_try_users_me(served: tuple[str, str]) -> None:
    """The docs UI logs in through Authorize and calls GET /users/me; every request
    the page makes goes to the server's own origin (A11: no CDN)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, pin = served
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    requested: list[str] = []
    with sync_playwright() as p:
        # Chromium trusts no CA file given on the command line; rather than switch
        # certificate checks off (ignore_https_errors), it is told to accept exactly
        # this server's public key and nothing else.
        browser = launch(p, pin)
        try:
            context = browser.new_context()
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            try:
                _drive_docs(page, base)
            finally:
                page.screenshot(path="/tmp/docs.png", full_page=True)
        finally:
            browser.close()

    assert requested, "the page made no requests"
    network = [u for u in requested if urlsplit(u).scheme not in ("data", "blob")]
    foreign = [u for u in network if not u.startswith(origin + "/")]
    assert foreign == [], f"requests to other origins: {foreign}"
    assert any(u.startswith(f"{origin}/oauth/token") for u in network)
    assert any(u.startswith(f"{origin}/static/swagger-ui/") for u in network)


def _drive_docs(page: object, base: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    response = page.goto(f"{base}/docs")
    assert response is not None and response.status == 200
    me_summary = page.locator(".opblock-get .opblock-summary-path[data-path='/users/me']")
    expect(me_summary).to_be_visible()
    expect(page.locator(".opblock-post .opblock-summary-path[data-path='/users']")).to_be_visible()

    page.locator(".auth-wrapper button.authorize").click()
    modal = page.locator(".modal-ux")
    expect(modal).to_be_visible()
    oauth_block = modal.locator(".auth-container").filter(has_text="OAuth2PasswordBearer")
    expect(oauth_block.locator("#client_id_password")).to_have_value("userservice-frontend")
    oauth_block.locator("#oauth_username").fill(EMAIL)
    oauth_block.locator("#oauth_password").fill(PASSWORD)
    oauth_block.locator("button.authorize").click()
    # Swagger UI swaps the form for "Authorized" + Logout once the token endpoint said yes.
    expect(oauth_block.get_by_role("heading", name="Authorized")).to_be_visible()
    expect(oauth_block.locator("button", has_text="Logout")).to_be_visible()
    expect(oauth_block.locator(".errors")).to_have_count(0)
    modal.locator("button.btn-done").first.click()
    expect(modal).to_have_count(0)

    me_summary.click()
    me_path = page.locator(".opblock-summary-path[data-path='/users/me']")
    operation = page.locator(".opblock-get").filter(has=me_path)
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table .response")
    expect(live.locator(".response-col_status").first).to_have_text("200")
    expect(live.locator(".response-col_description")).to_contain_text(EMAIL)
