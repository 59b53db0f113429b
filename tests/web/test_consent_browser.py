"""A real Chromium signs in, sees the consent page for a registered
third-party app, allows (and in a second run denies), and lands on the app's
redirect URI with a code (or access_denied). The app's callback is intercepted by
the browser itself, so nothing listens on another port."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.accounts import ISSUER, PASSWORD
from tests.support.browser import launch, require_chromium, tls_server
from tests.support.databases import SqliteTemplates
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import OAuthClient
from userservice.settings import Settings

EMAIL = "consent-user@example.com"
CALLBACK = "https://photos.example/callback"
VERIFIER = "chromium-verifier-" + "q" * 40


@pytest.fixture
def served(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings = Settings(
        _env_file=None,
        database_url=sqlite_templates.fresh_url(tmp_path),
        data_dir=tmp_path,
        issuer=ISSUER,
    )
    app = create_app(settings)
    with TestClient(app, base_url=ISSUER) as client:
        assert client.post("/users", json={"email": EMAIL, "password": PASSWORD}).is_success
    with Session(engine_of(app)) as session, session.begin():
        session.add(
            OAuthClient(
                client_id="photos",
                client_name="Photos <b>&</b> Co",
                client_type="public",
                secret_digest=None,
                token_endpoint_auth_method="none",
                redirect_uris=[CALLBACK],
                post_logout_redirect_uris=[],
                grant_types=["authorization_code"],
                response_types=["code"],
                scope="openid profile email",
                is_first_party=False,
                extra={},
            )
        )
    with tls_server(settings, tmp_path) as served_at:
        yield served_at


def _authorize_url(base: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    return f"{base}/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": "photos",
            "redirect_uri": CALLBACK,
            "scope": "openid email",
            "state": "xyz",
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )


def _run(base: str, pin: str, decision: str) -> dict[str, list[str]]:
    from playwright.sync_api import Route, expect, sync_playwright

    landed: list[str] = []
    with sync_playwright() as p:
        browser = launch(p, pin)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)

            def callback(route: Route) -> None:
                landed.append(route.request.url)
                route.fulfill(status=200, content_type="text/plain", body="app callback")

            page.route(f"{CALLBACK}*", callback)
            page.goto(_authorize_url(base))
            assert urlsplit(page.url).path == "/login"
            page.fill("#email", EMAIL)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            # The consent page names the app (escaped) and explains each scope.
            expect(page.get_by_role("heading")).to_contain_text("Photos <b>&</b> Co")
            expect(page.locator("ul.scopes")).to_contain_text("email address")
            page.screenshot(path=f"/tmp/consent-{decision}.png", full_page=True)
            page.get_by_role("button", name="Allow" if decision == "allow" else "Deny").click()
            page.wait_for_url(f"{CALLBACK}*")
            if decision == "allow":
                # A9: the account page lists the app, and withdrawing works.
                page.goto(f"{base}/account")
                expect(page.locator("ul.grants")).to_contain_text("Photos <b>&</b> Co")
                page.get_by_role("button", name="Withdraw access").click()
                expect(page.locator("#no-grants")).to_be_visible()
        finally:
            browser.close()
    assert len(landed) == 1, landed
    return parse_qs(urlsplit(landed[0]).query)


@pytest.mark.browser
@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_login_consent_and_redirect_in_chromium(served: tuple[str, str], decision: str) -> None:
    require_chromium()
    base, pin = served
    query = _run(base, pin, decision)
    assert query["state"] == ["xyz"] and query["iss"] == [ISSUER]
    if decision == "allow":
        assert len(query["code"][0]) >= 43 and "error" not in query
    else:
        assert query["error"] == ["access_denied"] and "code" not in query
