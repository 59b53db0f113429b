"""Every hosted page, opened in Chromium as a visitor reaches it, in each language:
the walk the accessibility test (tests/web/test_accessibility_browser.py) and the
screenshots (scripts/screenshots.py) share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, make_admin, register
from tests.support.browser import tls_server
from tests.support.factors import now_code, verified
from tests.support.oauth_flow import add_app, authorize_url, obtain_code, redeem
from tests.support.oauth_flow import sign_in as client_sign_in
from tests.support.passkey_browser import virtual_authenticator
from tests.support.personal_data import browser as browser_at
from tests.support.server import free_port
from userservice.app import create_app
from userservice.settings import Settings
from userservice.wiring import wired

EMAIL = "ada@example.com"
ADMIN_EMAIL = "root@example.com"
APP_NAME = "Example ID"
ALLOWED_APP = "calendar-app"
PHONE_IP = "203.0.113.24"
PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# What each language's browser asks for (Accept-Language from the context locale).
BROWSER_LOCALES = {"en": "en-US", "zh-Hans": "zh-CN"}
TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Stop:
    name: str
    open: Callable[[Any, str], None]  # (Playwright page, base URL)
    signed_in: bool = False


def _goto(path: str) -> Callable[[Any, str], None]:
    def open_page(page: Any, base: str) -> None:
        page.goto(base + path)

    return open_page


def _failed_login(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", EMAIL)
    page.fill("#password", "not the password")
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_selector("#form-error")


def _start_two_factor(page: Any, base: str) -> None:
    page.goto(base + "/account#two-factor")
    page.fill("#factor_password", PASSWORD)
    page.locator("form[action='/account/two-factor/start'] button[type=submit]").click()
    page.wait_for_selector("#totp-secret")


def _confirm_two_factor(page: Any, base: str) -> None:
    """The code an app would show for the key on the setup page (M1)."""
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill("#code", now_code(secret))
    page.locator("form[action='/account/two-factor/confirm'] button[type=submit]").click()
    page.wait_for_selector("#recovery-codes")


def _start_passkey(page: Any, base: str) -> None:
    """The password and a name on the account page: the page with the create
    button (M9)."""
    page.goto(base + "/account#passkeys")
    page.fill("#passkey_name", "Laptop")
    page.fill("#passkey_password", PASSWORD)
    page.locator("form[action='/account/passkeys/add'] button[type=submit]").click()
    page.wait_for_selector("#passkey-create")


def _make_passkey(page: Any, base: str) -> None:
    """The virtual authenticator makes the key: her first factor's recovery codes."""
    page.locator("#passkey-create").click()
    page.wait_for_selector("#recovery-codes")


def _password_step(email: str, lands_on: str) -> Callable[[Any, str], None]:
    """The password of `email` on the sign-in page: the half-login's page (M6)."""

    def open_page(page: Any, base: str) -> None:
        page.goto(base + "/login?force=1")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.locator("form[action='/login'] button[type=submit]").click()
        page.wait_for_url(base + lands_on)

    return open_page


def _wrong_code(page: Any, base: str) -> None:
    # A recovery code's shape that none of hers has (80 random bits each, M2).
    page.fill("#code", "aaaa-aaaa-aaaa-aaaa")
    page.locator("form[action='/login/second-factor'] button[type=submit]").click()
    page.wait_for_selector("#form-error")


def _enrol_started(page: Any, base: str) -> None:
    """The start button: only this POST makes the key (M8); opening the page does not."""
    page.locator("form[action='/login/enrol/start'] button[type=submit]").click()
    page.wait_for_selector("#totp-secret")


def _enrolled(page: Any, base: str) -> None:
    """The first code for the key on the enrolment page: the recovery codes (M2)."""
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill("#code", now_code(secret))
    page.locator("form[action='/login/enrol'] button[type=submit]").click()
    page.wait_for_selector("#recovery-codes")


STOPS = (
    Stop("login", _goto("/login")),
    Stop("login-error", _failed_login),
    Stop("login-after-reset", _goto("/login?reset=1")),
    Stop("register", _goto("/register")),
    Stop("register-sent", _goto("/register/sent")),
    Stop("verify-email", _goto("/verify-email?token=x")),
    Stop("verify-email-resend", _goto("/verify-email/resend")),
    Stop("verify-email-sent", _goto("/verify-email/sent")),
    Stop("forgot-password", _goto("/forgot-password")),
    Stop("forgot-password-sent", _goto("/forgot-password/sent")),
    Stop("reset-password", _goto("/reset-password?token=x")),
    Stop("confirm-email-change", _goto("/confirm-email-change?token=x")),
    Stop("undo-email-change", _goto("/undo-email-change?token=x")),
    Stop("login-signed-out-everywhere", _goto("/login?signed_out=everywhere")),
    Stop("login-account-deleted", _goto("/login?deleted=1")),
    Stop("error", _goto("/oauth/authorize")),
    Stop("account", _goto("/account"), signed_in=True),
    Stop("consent", _goto(authorize_url(scope="openid profile email")), signed_in=True),
    Stop("logout", _goto("/logout"), signed_in=True),
    Stop("end-session", _goto("/oauth/logout"), signed_in=True),
    # Last: a passkey and then the app end every other session of hers.
    Stop("account-passkey-add", _start_passkey, signed_in=True),
    Stop("account-passkey-codes", _make_passkey, signed_in=True),
    Stop("account-passkeys", _goto("/account#passkeys"), signed_in=True),
    Stop("account-two-factor-setup", _start_two_factor, signed_in=True),
    Stop("account-recovery-codes", _confirm_two_factor, signed_in=True),
    Stop("account-two-factor-on", _goto("/account#two-factor"), signed_in=True),
    Stop("login-second-factor", _password_step(EMAIL, "/login/second-factor"), signed_in=True),
    Stop("login-second-factor-error", _wrong_code, signed_in=True),
    # An administrator the policy makes set up an app before any session (M8).
    Stop("login-enrol", _password_step(ADMIN_EMAIL, "/login/enrol"), signed_in=True),
    Stop("login-enrol-setup", _enrol_started, signed_in=True),
    Stop("login-enrol-codes", _enrolled, signed_in=True),
)


@contextmanager
def tour_server(database_url: str, directory: Path) -> Iterator[tuple[str, str]]:
    """A TLS server holding one user, signed in on a phone, and two third-party
    apps: one she allowed there (the account page lists the phone and the app),
    the other the consent stop asks for. Yields (base, pin). The public URL is
    https://localhost:<port>: WebAuthn needs a domain as relying party id (M9)."""
    port = free_port()
    issuer = f"https://localhost:{port}"
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=directory,
        issuer=issuer,
        app_name=APP_NAME,
    )
    with TestClient(create_app(settings), base_url=issuer) as client:
        register(client, EMAIL, display_name="Ada Lovelace")
        # A proven address: the account page offers two-step verification (M3).
        app = cast(FastAPI, client.app)
        verified(app, EMAIL)
        make_admin(app, ADMIN_EMAIL)
        verified(app, ADMIN_EMAIL)
        wired(app).mfa_policy.set_required_for("admins", actor_id=None, ip=None)
        add_app(client, name="Photo App")
        add_app(client, ALLOWED_APP, name="Calendar App")
        # Her other session, on a phone: the account page lists it beside the tour's.
        phone = browser_at(cast(FastAPI, client.app), PHONE_IP, PHONE_AGENT)
        client_sign_in(phone)
        code, verifier = obtain_code(phone, ALLOWED_APP, scope="openid profile email")
        assert redeem(phone, code, verifier, ALLOWED_APP).status_code == 200
    with tls_server(settings, directory, port=port) as (_address, pin):
        yield issuer, pin


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(base + "/account")


def tour(browser: Any, base: str, locale: str) -> Iterator[tuple[Stop, Any]]:
    """Open every stop in a browser whose language is `locale`; yields (stop, page)
    with the page loaded. Signed-out stops come first, then one sign-in."""
    context = browser.new_context(
        locale=BROWSER_LOCALES[locale], viewport={"width": 720, "height": 900}
    )
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        # A platform authenticator with user verification, for the passkey stops.
        virtual_authenticator(context, page)
        signed_in = False
        for stop in sorted(STOPS, key=lambda s: s.signed_in):
            if stop.signed_in and not signed_in:
                sign_in(page, base)
                signed_in = True
            stop.open(page, base)
            yield stop, page
    finally:
        context.close()
