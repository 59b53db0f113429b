"""What the browser walks through mailed links share: signing in on the hosted
page, and a second in-process instance on the served database. The page's
language is checked by tests.support.browser_pages.in_language."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from userservice.app import create_app
from userservice.settings import Settings

TIMEOUT_MS = 20_000


def sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login?force=1")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")


def in_process(settings: Settings) -> TestClient:
    # A second instance on the same database and keys: tokens it issues are the
    # served instance's tokens (what another replica would do).
    return TestClient(create_app(settings), base_url=settings.issuer)


def sign_in_fails_with(settings: Settings, email: str, password: str) -> None:
    with in_process(settings) as client:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        assert response.status_code == 400, response.text
