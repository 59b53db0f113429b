"""The whole account walk in a real headless Chromium against a real uvicorn over
TLS, every mail delivered over SMTP (aiosmtpd on loopback) and its link followed:
verify the address → sign in → rename → change the password → a second browser
signs in and is signed out from the first (L22, L28) → allow a third-party app on
the consent page, then withdraw it (L24) → change the address: confirm from the new
one, undo from the old one, a new password from the mailed reset link (L20, L21) →
download my data (L26) → delete the account (L29), after which no table holds the
address, the name or the id (L27). In English and in Simplified Chinese; axe finds
no serious or critical violation on any page the walk sees."""

from __future__ import annotations

import json
import re
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.support.accounts import PASSWORD, bearer
from tests.support.axe import axe_source, describe, violations
from tests.support.browser import launch, require_chromium
from tests.support.browser_pages import CJK, in_language, path_of
from tests.support.callers import THIRD_PARTY, add_third_party
from tests.support.databases import SqliteTemplates
from tests.support.deployment import Deployment, deployed
from tests.support.mail_walk import TIMEOUT_MS, in_process, sign_in
from tests.support.mail_walk import sign_in_fails_with as token_refused
from tests.support.oauth_flow import REDIRECT, authorize_url, pkce, query, redeem
from tests.support.personal_data import found
from tests.support.smtp import Received

CHANGED_PASSWORD = "a different tune on the old violin"
RESET_PASSWORD = "seven ravens over the frozen weir"
NAMES = {"en": "Quillon Walker", "zh-Hans": "林奎隆"}
APP_SCOPE = "openid profile offline_access"
# What the walk does, as the export's events name it.
EVENTS = (
    *("user.registered", "email.verified", "login.succeeded", "password.changed"),
    *("session.ended", "consent.granted", "consent.revoked", "email_change.requested"),
    *("email_change.confirmed", "email_change.undone", "password.reset"),
)


@dataclass
class Walk:
    deployment: Deployment
    http: httpx.Client  # to the served instance, trusting its CA
    axe: str
    lang: str
    page: Any  # the first browser
    other: Any  # the second browser
    read: set[str] = field(default_factory=set)  # Message-IDs of the mails followed

    @property
    def base(self) -> str:
        return self.deployment.base

    def clean(self, page: Any, where: str) -> None:
        in_language(page, self.lang)
        found = violations(page, self.axe)
        assert found == [], f"{where}:\n{describe(found)}"

    def mail(self, to: str, path: str) -> Received:
        """The next mail to `to` with a link to `path`, in the walk's language."""
        inbox = self.deployment.smtp.inbox
        received = inbox.wait_for(0)
        while True:
            for mail in received:
                if mail.message["Message-ID"] in self.read or to not in mail.recipients:
                    continue
                if path in mail.text:
                    self.read.add(mail.message["Message-ID"])
                    assert mail.message["Content-Language"] == self.lang
                    zh = self.lang == "zh-Hans"
                    assert bool(CJK.search(mail.message["Subject"])) == zh, path
                    assert bool(CJK.search(mail.text)) == zh, path
                    return mail
            # Fails after smtp.WAIT_SECONDS when nothing more arrives.
            received = inbox.wait_for(len(received) + 1)

    def link(self, to: str, path: str) -> str:
        return self.deployment.link(self.mail(to, path), path)


@pytest.fixture
def deployment(sqlite_templates: SqliteTemplates, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(sqlite_templates.fresh_url(tmp_path), tmp_path) as running:
        with in_process(running.settings) as client:
            add_third_party(client)
        yield running


@pytest.mark.browser
@pytest.mark.parametrize(("browser_locale", "lang"), [("en-GB", "en"), ("zh-CN", "zh-Hans")])
def test_the_whole_account_walk_in_chromium(
    deployment: Deployment, browser_locale: str, lang: str
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    old, new = f"walker-{lang.lower()}@example.com", f"moved-{lang.lower()}@example.org"
    with httpx.Client(
        base_url=deployment.base,
        verify=ssl.create_default_context(cafile=str(deployment.ca)),
        headers={"Accept-Language": browser_locale},
        timeout=TIMEOUT_MS / 1000,
    ) as http:
        created = http.post("/users", json={"email": old, "password": PASSWORD})
        assert created.status_code == 201, created.text
        user_id = uuid.UUID(created.json()["id"])
        needles = [old, str(user_id), user_id.hex, NAMES[lang].lower()]
        with sync_playwright() as p:
            browser = launch(p, deployment.pin)
            try:
                pages = []
                for _ in range(2):
                    context = browser.new_context(locale=browser_locale)
                    context.set_default_timeout(TIMEOUT_MS)
                    pages.append(context.new_page())
                walk = Walk(deployment, http, axe_source(), lang, *pages)
                _verify_and_sign_in(walk, old)
                _rename_and_change_password(walk)
                _end_the_other_session(walk, old)
                _allow_and_withdraw_an_app(walk)
                _change_and_undo_the_address(walk, old, new)
                _download_my_data(walk, old)
                # The scan below finds what it looks for while the account exists.
                assert {needle for _, _, needle in _stored(deployment, needles)} == set(needles)
                _delete_the_account(walk, old)
            finally:
                browser.close()
    for password in (PASSWORD, CHANGED_PASSWORD, RESET_PASSWORD):
        token_refused(deployment.settings, old, password)
    # L27: no table holds the address (either one), the id or the name any more.
    assert _stored(deployment, [*needles, new]) == []


def _submit(page: Any, action: str) -> None:
    page.locator(f"form[action='{action}'] button[type=submit]").click()


def _signed_in(walk: Walk, page: Any, email: str, password: str) -> None:
    sign_in(page, walk.base, email, password)
    assert path_of(page) == "/account", page.url
    walk.clean(page, "account")


def _verify_and_sign_in(walk: Walk, email: str) -> None:
    walk.page.goto(walk.link(email, "/verify-email"))
    walk.clean(walk.page, "verify-email link")
    assert not walk.deployment.verified(email)  # opening the link uses nothing
    _submit(walk.page, "/verify-email")
    walk.clean(walk.page, "address verified")
    assert walk.deployment.verified(email)
    walk.page.goto(f"{walk.base}/login")
    walk.clean(walk.page, "login")
    _signed_in(walk, walk.page, email, PASSWORD)


def _rename_and_change_password(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.fill("#display_name", NAMES[walk.lang])
    _submit(page, "/account/profile")
    assert path_of(page) == "/account?done=profile"
    expect(page.locator("#display_name")).to_have_value(NAMES[walk.lang])
    walk.clean(page, "renamed")
    # L28: the current password is required; this browser goes on signed in.
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", CHANGED_PASSWORD)
    _submit(page, "/account/password")
    assert path_of(page) == "/account?done=password"
    expect(page.locator("ul.sessions > li")).to_have_count(1)
    walk.clean(page, "password changed")


def _end_the_other_session(walk: Walk, email: str) -> None:
    from playwright.sync_api import expect

    page, other = walk.page, walk.other
    _signed_in(walk, other, email, CHANGED_PASSWORD)
    page.goto(f"{walk.base}/account")
    expect(page.locator("ul.sessions > li")).to_have_count(2)
    expect(page.locator("ul.sessions .current")).to_have_count(1)
    # L22: the other browser's session, ended from this one.
    page.locator("ul.sessions > li:not(:has(.current)) button[type=submit]").click()
    assert path_of(page) == "/account?done=session-ended"
    expect(page.locator("ul.sessions > li")).to_have_count(1)
    walk.clean(page, "session ended")
    other.goto(f"{walk.base}/account")
    assert urlsplit(other.url).path == "/login"


def _allow_and_withdraw_an_app(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    # The app's redirect URI is on no network here: the browser's arrival is the answer.
    page.route("https://app.example/**", lambda route: route.fulfill(body="back at the app"))
    verifier, challenge = pkce()
    page.goto(walk.base + authorize_url(THIRD_PARTY, challenge=challenge, scope=APP_SCOPE))
    walk.clean(page, "consent")
    page.locator("button[name=decision][value=allow]").click()
    page.wait_for_url(REDIRECT + "?*")
    tokens = redeem(walk.http, query(page.url)["code"], verifier, THIRD_PARTY)
    assert tokens.status_code == 200, tokens.text
    access, refresh = tokens.json()["access_token"], tokens.json()["refresh_token"]
    assert walk.http.get("/oauth/userinfo", headers=bearer(access)).status_code == 200

    page.goto(f"{walk.base}/account")
    expect(page.locator("ul.grants > li")).to_have_count(1)
    walk.clean(page, "account with an app")
    page.locator("ul.grants form button[type=submit]").click()
    assert path_of(page) == "/account?done=app-withdrawn"
    expect(page.locator("#no-grants")).to_be_visible()
    walk.clean(page, "app withdrawn")
    # L24: the app's tokens died with the grant.
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": THIRD_PARTY}
    refreshed = walk.http.post("/oauth/token", data=form)
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"
    assert walk.http.get("/oauth/userinfo", headers=bearer(access)).status_code == 401


def _change_and_undo_the_address(walk: Walk, old: str, new: str) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.fill("#new_email", new)
    page.fill("#email_password", CHANGED_PASSWORD)
    _submit(page, "/account/email")
    assert path_of(page) == "/account?done=email-sent"
    walk.clean(page, "email change asked")
    # L20: nothing changes until the new address's link is used.
    page.goto(walk.link(new, "/confirm-email-change"))
    walk.clean(page, "confirm link")
    assert walk.deployment.verified(old)  # still the account's address
    _submit(page, "/confirm-email-change")
    walk.clean(page, "address changed")
    assert new in page.locator("[role=status]").inner_text()
    assert walk.deployment.verified(new)

    # L21: the old address's notice names the new one only partly, and undoes.
    notice = walk.mail(old, "/undo-email-change")
    assert new not in notice.text and new not in notice.html
    page.goto(walk.deployment.link(notice, "/undo-email-change"))
    walk.clean(page, "undo link")
    _submit(page, "/undo-email-change")
    walk.clean(page, "address restored")
    assert walk.deployment.verified(old)
    page.goto(f"{walk.base}/account")  # every session ended with the undo
    assert urlsplit(page.url).path == "/login"

    page.goto(walk.link(old, "/reset-password"))
    walk.clean(page, "reset-password")
    page.fill("#password", RESET_PASSWORD)
    _submit(page, "/reset-password")
    assert urlsplit(page.url).path == "/login"
    walk.clean(page, "login after reset")
    sign_in(page, walk.base, old, CHANGED_PASSWORD)  # whoever moved the address knew it
    assert urlsplit(page.url).path == "/login"
    _signed_in(walk, page, old, RESET_PASSWORD)
    expect(page.locator("#account-email")).to_have_text(old)


def _download_my_data(walk: Walk, email: str) -> None:
    with walk.page.expect_download() as download:
        walk.page.click("a[href='/account/export']")
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    profile = data["profile"]
    assert profile["email"] == email and profile["email_verified"] is True
    assert profile["display_name"] == NAMES[walk.lang]
    assert len(data["sessions"]) == 1 and data["sessions"][0]["ip"] == "127.0.0.1"
    assert [app["client_id"] for app in data["withdrawn_apps"]] == [THIRD_PARTY]
    events = {event["event"] for event in data["events"]}
    assert set(EVENTS) <= events, events
    # L26: no secret and no digest of one, under any name.
    text = json.dumps(data, ensure_ascii=False)
    keys = {key.lower() for key in re.findall(r'"([^"]+)": ', text)}
    assert not {k for k in keys if any(w in k for w in ("hash", "digest", "secret", "password"))}
    for secret in ("$argon2", PASSWORD, CHANGED_PASSWORD, RESET_PASSWORD):
        assert secret not in text


def _delete_the_account(walk: Walk, email: str) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.fill("#delete_password", RESET_PASSWORD)
    page.check("#confirm")
    _submit(page, "/account/delete")
    assert path_of(page) == "/login?deleted=1"
    expect(page.locator(".notice")).to_be_visible()
    walk.clean(page, "account deleted")
    sign_in(page, walk.base, email, RESET_PASSWORD)
    assert urlsplit(page.url).path == "/login"
    expect(page.locator("#form-error")).to_be_visible()
    walk.clean(page, "sign-in refused")


def _stored(deployment: Deployment, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) wherever one of `needles` (lower case) is stored."""
    with in_process(deployment.settings) as client:
        return found(cast(FastAPI, client.app), needles)
