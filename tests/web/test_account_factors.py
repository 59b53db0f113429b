"""Two-step verification on the account page (TestClient over HTTPS, SQLite and
PostgreSQL): set up an authenticator app with a code pyotp computes from the key
the page shows, the recovery codes shown once, new codes voiding the old ones,
turning it off; each change needs the current password (M3) and the CSRF token
(F4); adding or removing the app ends every other session and token while this
browser goes on in a new session with the matching amr (M3, M5)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.factors import (
    CODE_SHAPE,
    CONFIRM,
    START,
    codes_on,
    enable,
    now_code,
    post,
    secret_on,
    verified,
    wrong_code,
)
from tests.support.journeys import mails
from tests.support.pages import EMAIL, SESSION, check_page_headers, csrf_token, web_login
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.settings import Settings

CODES, REMOVE = "/account/two-factor/recovery-codes", "/account/two-factor/remove"


def stored_amr(app: FastAPI, raw_id: str) -> str | None:
    with engine_of(app).connect() as conn:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw_id))
        amr: str | None = conn.execute(query).scalar_one()
    return amr


@pytest.fixture
def ready(client: TestClient, app: FastAPI, signed_in: str) -> str:
    verified(app, EMAIL)
    return signed_in


def test_m1_the_setup_page_shows_a_local_qr_and_the_key(client: TestClient, ready: str) -> None:
    page = client.get("/account").text
    assert '<section id="two-factor" aria-labelledby="two-factor-heading">' in page
    assert f'action="{START}"' in page and f'action="{REMOVE}"' not in page
    started = post(client, START, current_password=PASSWORD)
    check_page_headers(started)  # no-store: the key must stay out of every cache
    assert "<svg" in started.text and "http" not in started.text.split("<svg", 1)[1][:200]
    assert 'autocomplete="one-time-code"' in started.text and '<label for="code">' in started.text
    key = re.search(r'id="totp-secret"[^>]*>([^<]+)<', started.text)
    assert key and re.fullmatch(r"([A-Z2-7]{4} )*[A-Z2-7]{1,4}", key.group(1))
    assert len(secret_on(started.text)) >= 32  # 160 bits


def test_m1_m2_enable_shows_ten_codes_once_and_no_store(
    client: TestClient, app: FastAPI, ready: str
) -> None:
    secret, codes, _ = enable(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(CODE_SHAPE.match(c) for c in codes)
    page = client.get("/account")
    assert page.status_code == 200  # this browser is still signed in
    check_page_headers(page)
    assert "10 of 10" in page.text and f'action="{REMOVE}"' in page.text
    assert not any(code in page.text for code in codes)  # shown once
    assert secret not in page.text
    assert mails(app, EMAIL, "factor_added")


def test_m3_enabling_ends_every_other_session_and_token_but_not_this_browser(
    client: TestClient, app: FastAPI, ready: str
) -> None:
    other = TestClient(app, base_url="https://testserver")
    assert web_login(other).status_code == 303
    tokens = login(client, EMAIL)
    enable(client)
    new_id = client.cookies.get(SESSION)
    assert new_id and new_id != ready
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert other.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    # M5: this browser proved both factors.
    assert stored_amr(app, new_id) == "pwd otp mfa"


def test_m1_a_wrong_code_leaves_the_app_off(client: TestClient, ready: str) -> None:
    started = post(client, START, current_password=PASSWORD)
    secret = secret_on(started.text)
    for code in (wrong_code(secret), "abcdef", "1" * 64):
        refused = post(client, CONFIRM, code=code)
        assert refused.status_code == 400, code
        assert 'id="code-error"' in refused.text and 'aria-invalid="true"' in refused.text
        assert "<svg" not in refused.text  # the key is not shown again
    assert post(client, CONFIRM, code="").status_code == 400
    assert f'action="{REMOVE}"' not in client.get("/account").text
    # The same enrolment still takes the right code.
    assert post(client, CONFIRM, code=now_code(secret)).status_code == 200


def test_m1_guesses_at_the_first_code_are_throttled(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(second_factor_limit="3/minute")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, EMAIL)
        verified(client.app, EMAIL)  # type: ignore[arg-type]
        assert web_login(client).status_code == 303
        secret = secret_on(post(client, START, current_password=PASSWORD).text)
        answers = [post(client, CONFIRM, code=wrong_code(secret)) for _ in range(4)]
        assert [r.status_code for r in answers] == [400, 400, 400, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert post(client, CONFIRM, code=now_code(secret)).status_code == 429


def test_m3_the_current_password_is_needed_and_its_guesses_throttled(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(login_limit_per_account="3/minute")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, EMAIL)
        verified(client.app, EMAIL)  # type: ignore[arg-type]
        assert web_login(client).status_code == 303
        empty = post(client, START, current_password="")
        assert empty.status_code == 400 and 'id="factor_password-error"' in empty.text
        answers = [post(client, START, current_password="wrong guess") for _ in range(4)]
        assert [r.status_code for r in answers] == [400, 400, 400, 429]
        assert "The current password is not correct." in answers[0].text
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert "<svg" not in answers[-1].text


def test_m3_an_unverified_account_may_not_enrol(client: TestClient, signed_in: str) -> None:
    page = client.get("/account").text
    assert 'id="two-factor-unverified"' in page and f'action="{START}"' not in page
    refused = post(client, START, current_password=PASSWORD)
    assert refused.status_code == 403
    assert "only a confirmed address may set up" in refused.text and "<svg" not in refused.text


def test_m2_new_codes_void_the_old_ones(client: TestClient, app: FastAPI, ready: str) -> None:
    _, old, _ = enable(client)
    wrong = post(client, CODES, current_password="wrong guess")
    assert wrong.status_code == 400 and 'id="codes_password-error"' in wrong.text
    renewed = post(client, CODES, current_password=PASSWORD)
    assert renewed.status_code == 200
    check_page_headers(renewed)
    new = codes_on(renewed.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert mails(app, EMAIL, "recovery_codes_renewed")
    # An old code no longer proves the second factor (here, for an address change).
    change = {"email": "new@example.com", "current_password": PASSWORD}
    moved = post(client, "/account/email", **change, code=old[0])
    assert moved.status_code == 400 and 'id="email_code-error"' in moved.text
    assert post(client, "/account/email", **change, code=new[0]).status_code == 303


def test_m2_new_codes_without_an_app_are_refused(client: TestClient, ready: str) -> None:
    refused = post(client, CODES, current_password=PASSWORD)
    assert refused.status_code == 409 and "Two-step verification is not on." in refused.text


def test_m3_turning_it_off(client: TestClient, app: FastAPI, ready: str) -> None:
    enable(client)
    before = client.cookies.get(SESSION)
    wrong = post(client, REMOVE, current_password="wrong guess")
    assert wrong.status_code == 400 and 'id="remove_password-error"' in wrong.text
    removed = post(client, REMOVE, current_password=PASSWORD)
    assert removed.status_code == 303
    assert removed.headers["location"] == "/account?done=two-factor-off"
    new_id = client.cookies.get(SESSION)
    assert new_id and new_id != before
    assert stored_amr(app, new_id) in (None, "pwd")  # M5: the password alone now
    page = client.get(removed.headers["location"]).text
    assert "Two-step verification is off." in page and f'action="{START}"' in page
    assert mails(app, EMAIL, "factor_removed")
    # The password alone signs in again (M4 no longer applies).
    assert login(client, EMAIL)["access_token"]
    # A second press (another tab) is no error.
    assert post(client, REMOVE, current_password=PASSWORD).status_code == 303


def test_f4_every_factor_form_needs_the_csrf_token_and_our_origin(
    client: TestClient, ready: str
) -> None:
    for path in (START, CONFIRM, CODES, REMOVE):
        fields: dict[str, Any] = {"current_password": PASSWORD, "code": "123456"}
        assert client.post(path, data=fields, follow_redirects=False).status_code == 403
        token = csrf_token(client.get("/account").text)
        foreign = client.post(
            path,
            data={"csrf_token": token, **fields},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert foreign.status_code == 403, path
    assert f'action="{REMOVE}"' not in client.get("/account").text


def test_signed_out_posts_go_to_sign_in(client: TestClient, app: FastAPI, user: Any) -> None:
    token = csrf_token(client.get("/login").text)
    for path in (START, CONFIRM, CODES, REMOVE):
        fields = {"csrf_token": token, "current_password": PASSWORD}
        answer = client.post(path, data=fields, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_m1_a_used_code_is_refused_afterwards(client: TestClient, ready: str) -> None:
    """The code that turned the app on (and any earlier step's) is spent."""
    secret, _, used = enable(client)
    replayed = post(
        client, "/account/email", email="new@example.com", current_password=PASSWORD, code=used
    )
    assert replayed.status_code == 400 and 'id="email_code-error"' in replayed.text
    later = post(
        client,
        "/account/email",
        email="new@example.com",
        current_password=PASSWORD,
        code=now_code(secret, ahead=1),
    )
    assert later.status_code == 303


def test_the_confirm_without_a_start_is_refused(client: TestClient, ready: str) -> None:
    refused = post(client, CONFIRM, code="123456")
    assert refused.status_code == 400 and "Start again." in refused.text
    assert f'action="{REMOVE}"' not in client.get("/account").text


def test_m5_a_password_change_keeps_how_this_browser_signed_in(
    client: TestClient, app: FastAPI, ready: str
) -> None:
    """The new session after a password change (L28) keeps the second factor this
    browser proved; it is not silently downgraded to the password alone."""
    enable(client)
    new = "another long passphrase here"
    changed = post(client, "/account/password", current_password=PASSWORD, new_password=new)
    assert changed.status_code == 303
    raw_id = client.cookies.get(SESSION)
    assert raw_id and stored_amr(app, raw_id) == "pwd otp mfa"
