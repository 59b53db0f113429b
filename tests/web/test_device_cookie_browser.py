"""S12 in a real browser: the owner signs in once from Chromium (and so holds a
device cookie) and signs out; an attacker without one hammers the account from
the same address past the limit; a browser that never signed in is throttled,
and the owner's browser still signs in with the right password."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trustme
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, PASSWORD
from tests.support.browser import launch, require_chromium, spki_pin
from tests.support.databases import SqliteTemplates
from tests.support.pages import csrf_token
from tests.support.server import running_server
from userservice.app import create_app
from userservice.settings import Settings
from userservice.web.browser import DEVICE_COOKIE

EMAIL = "owner@example.com"
LIMIT = 3
TIMEOUT_MS = 20_000
THROTTLED = "Too many sign-in attempts. Wait a little and try again."


@pytest.fixture
def served(
    sqlite_templates: SqliteTemplates, tmp_path: Path
) -> Iterator[tuple[str, str, ssl.SSLContext]]:
    """(base URL, the certificate's pin for Chromium, a context trusting its CA)."""
    settings = Settings(
        _env_file=None,
        database_url=sqlite_templates.fresh_url(tmp_path),
        data_dir=tmp_path,
        issuer=ISSUER,
        login_limit_per_account=f"{LIMIT}/minute",
    )
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        assert client.post("/users", json={"email": EMAIL, "password": PASSWORD}).is_success
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    with running_server(settings, cert=cert, key=key) as base:
        yield base, spki_pin(leaf.cert_chain_pems[0].bytes()), trust


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def _attack(base: str, trust: ssl.SSLContext) -> None:
    with httpx.Client(base_url=base, verify=trust) as attacker:
        statuses = []
        for _ in range(LIMIT + 2):
            form = {
                "email": EMAIL,
                "password": "a wrong guess, again",
                "csrf_token": csrf_token(attacker.get("/login").text),
            }
            statuses.append(attacker.post("/login", data=form).status_code)
    assert statuses == [200] * LIMIT + [429] * 2, statuses


@pytest.mark.browser
def test_the_owners_browser_signs_in_while_an_attacker_is_throttled(
    served: tuple[str, str, ssl.SSLContext],
) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, pin, trust = served
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            owner = browser.new_context()
            page = owner.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            _sign_in(page, base)
            expect(page.locator("#account-email")).to_have_text(EMAIL)
            device = {c["name"]: c for c in owner.cookies()}[DEVICE_COOKIE]
            assert device["secure"] and device["httpOnly"] and device["sameSite"] == "Lax"
            assert device["path"] == "/" and device["expires"] > 0  # persistent
            page.goto(f"{base}/logout")
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{base}/login")

            _attack(base, trust)

            stranger = browser.new_context().new_page()
            stranger.set_default_timeout(TIMEOUT_MS)
            _sign_in(stranger, base)
            expect(stranger.locator(".error")).to_have_text(THROTTLED)

            _sign_in(page, base)
            expect(page.locator("#account-email")).to_have_text(EMAIL)
            assert urlsplit(page.url).path == "/account"
        finally:
            browser.close()
