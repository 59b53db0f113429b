"""The mail journeys' hosted pages (web/journeys.py): sign up, verify, forgot and
reset password, driven as a browser would. One page for every address (L1, L2),
a GET never uses a token, a used/expired/foreign token gets a clear page and
changes nothing (E8), a reset ends every session and signs nobody in (L4), the
page protections hold (F4, F6), and no input gives a 500; on SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, login, register
from tests.support.journeys import last_token, mails
from tests.support.pages import (
    XSS,
    check_page_headers,
    csrf_token,
    hidden_token,
    session_opens,
    submit,
    web_login,
)
from tests.support.timing import assert_one_response_time, interleaved
from userservice.app import create_app
from userservice.settings import Settings

NEW_PASSWORD = "a brand new passphrase"
FORMS = ["/register", "/forgot-password", "/verify-email/resend"]


def sign_up_page(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return submit(client, "/register", email=email, password=password, display_name="Ada")


def test_sign_up_verify_and_sign_in(client: TestClient, app: FastAPI) -> None:
    response = sign_up_page(client, "ada@example.com")
    assert response.status_code == 303
    assert response.headers["location"] == "/register/sent"
    assert client.get("/register/sent").status_code == 200
    token = last_token(app, "ada@example.com", "verify_email")
    page = client.get(f"/verify-email?token={token}")
    # A GET shows a button and uses nothing (mail scanners open links).
    assert page.status_code == 200 and hidden_token(page.text) == token
    assert client.get(f"/verify-email?token={token}").status_code == 200
    done = submit(client, f"/verify-email?token={token}", token=token)
    assert done.status_code == 200 and 'href="/login"' in done.text
    again = submit(client, f"/verify-email?token={token}", token=token)
    assert again.status_code == 400 and "/verify-email/resend" in again.text
    tokens = login(client, "ada@example.com", scope="openid profile email")
    me = client.get("/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email_verified"] is True


def test_a_taken_address_gets_the_same_page(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    taken = sign_up_page(client, "ada@example.com", "somebody else's passphrase")
    fresh = sign_up_page(client, "bob@example.com")
    assert (taken.status_code, taken.headers["location"]) == (
        fresh.status_code,
        fresh.headers["location"],
    )
    assert client.get(taken.headers["location"]).text == client.get(fresh.headers["location"]).text
    assert len(mails(app, "ada@example.com", "signup_existing")) == 1
    login(client, "ada@example.com")  # the existing password is untouched


def test_form_errors_are_tied_to_their_fields(client: TestClient) -> None:
    response = sign_up_page(client, "not an address", "password")
    assert response.status_code == 400
    assert 'aria-describedby="email-error"' in response.text
    assert 'id="email-error"' in response.text and 'role="alert"' in response.text
    weak = sign_up_page(client, "ada@example.com", "password")
    assert weak.status_code == 400
    assert re.search(
        r'aria-describedby="password-hint password-error"\s*aria-invalid="true"', weak.text
    )


@pytest.mark.parametrize("page", ["/forgot-password", "/verify-email/resend"])
def test_asking_for_a_mail_gets_one_page_for_every_address(
    client: TestClient, app: FastAPI, page: str
) -> None:
    register(client, "ada@example.com")
    answers = [submit(client, page, email=e) for e in ("ada@example.com", "nobody@example.com")]
    assert {(a.status_code, a.headers["location"]) for a in answers} == {
        (303, answers[0].headers["location"])
    }
    assert client.get(answers[0].headers["location"]).status_code == 200
    assert not mails(app, "nobody@example.com")


def test_pages_that_ask_for_mail_answer_at_one_time(
    make_settings: Callable[..., Settings],
) -> None:
    # L2: a known, unverified, verified or unknown address, a taken or a new one:
    # every answer waits for the same floor, so none tells them apart by its time
    # (a known address costs a token, a mail and a commit; an unknown one a read).
    app = create_app(make_settings(mail_limit_per_ip="1000/hour"))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "ada@example.com")
        register(client, "bob@example.com")
        token = last_token(app, "bob@example.com", "verify_email")
        submit(client, f"/verify-email?token={token}", token=token)
        form = {"csrf_token": csrf_token(client.get("/forgot-password").text)}
        fresh = itertools.count()

        def post(page: str, **fields: str) -> Callable[[], None]:
            def send() -> None:
                values = {k: v.format(next(fresh)) for k, v in fields.items()}
                answer = client.post(page, data={**form, **values}, follow_redirects=False)
                assert answer.status_code == 303, answer.text

            return send

        samples = interleaved(
            5,
            {
                "reset known": post("/forgot-password", email="ada@example.com"),
                "reset unknown": post("/forgot-password", email="n{}@example.com"),
                "resend unverified": post("/verify-email/resend", email="ada@example.com"),
                "resend verified": post("/verify-email/resend", email="bob@example.com"),
                "resend unknown": post("/verify-email/resend", email="n{}@example.com"),
                "sign-up taken": post("/register", email="ada@example.com", password=PASSWORD),
                "sign-up new": post("/register", email="new{}@example.com", password=PASSWORD),
            },
        )
    assert_one_response_time(samples)


def test_reset_ends_sessions_and_signs_nobody_in(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    assert web_login(client).status_code == 303
    session = client.cookies.get("__Host-session")
    assert session and session_opens(app, session)
    submit(client, "/forgot-password", email="ada@example.com")
    token = last_token(app, "ada@example.com", "reset_password")
    form_page = client.get(f"/reset-password?token={token}")
    assert form_page.status_code == 200 and hidden_token(form_page.text) == token
    weak = submit(client, f"/reset-password?token={token}", token=token, password="password")
    assert weak.status_code == 400 and 'id="password-error"' in weak.text
    done = submit(client, f"/reset-password?token={token}", token=token, password=NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
    assert "__Host-session" not in done.headers.get("set-cookie", "")
    assert not session_opens(app, session)
    assert client.get("/account", follow_redirects=False).status_code == 303
    used = client.get(f"/reset-password?token={token}")
    assert used.status_code == 400 and 'href="/forgot-password"' in used.text
    login(client, "ada@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(
    "token", ["", "x", "A" * 43, "A" * 5000, "%00" * 43, "%ff%fe", "%C3%BC" * 43, XSS]
)
def test_bad_tokens_get_a_clear_page(client: TestClient, token: str) -> None:
    for path in ("/verify-email", "/reset-password"):
        response = client.get(f"{path}?token={token}")
        assert response.status_code == 400
        assert "<script>" not in response.text
        assert 'role="alert"' in response.text


@pytest.mark.parametrize("value", ["A" * 43, "a\x00b", "ü" * 400, XSS, "A" * 100_000])
def test_no_input_gives_a_500(client: TestClient, value: str) -> None:
    register(client, "ada@example.com")
    for page, fields in (
        ("/register", {"email": value, "password": value, "display_name": value}),
        ("/forgot-password", {"email": value}),
        ("/verify-email/resend", {"email": value}),
        ("/verify-email", {"token": value}),
        ("/reset-password", {"token": value, "password": value}),
    ):
        html = client.get("/forgot-password").text
        response = client.post(
            page, data={"csrf_token": csrf_token(html), **fields}, follow_redirects=False
        )
        assert response.status_code < 500, (page, response.text)
        assert "<script>alert" not in response.text


def test_non_utf8_forms_are_refused_cleanly(client: TestClient) -> None:
    html = client.get("/forgot-password").text
    body = f"csrf_token={csrf_token(html)}&email=%ff%fe%00".encode()
    for page in ("/register", "/forgot-password", "/verify-email", "/reset-password"):
        response = client.post(
            page, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 400, page


@pytest.mark.parametrize("page", [*FORMS, "/verify-email", "/reset-password"])
def test_posts_need_the_csrf_token_and_our_origin(client: TestClient, page: str) -> None:
    client.get("/forgot-password")  # holds a CSRF cookie
    missing = client.post(page, data={"email": "ada@example.com"}, follow_redirects=False)
    assert missing.status_code == 403
    html = client.get("/forgot-password").text
    foreign = client.post(
        page,
        data={"csrf_token": csrf_token(html), "email": "ada@example.com"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403


@pytest.mark.parametrize(
    "path", [*FORMS, "/register/sent", "/forgot-password/sent", "/verify-email?token=x"]
)
def test_pages_keep_their_protections(client: TestClient, path: str) -> None:
    response = client.get(path)
    check_page_headers(response)
    assert "access-control-allow-origin" not in response.headers


def test_page_requests_are_throttled_per_client(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(mail_limit_per_ip="2/hour"))
    with TestClient(app, base_url="https://testserver") as client:
        for email in ("a@example.com", "b@example.com"):
            assert submit(client, "/forgot-password", email=email).status_code == 303
        refused = submit(client, "/forgot-password", email="c@example.com")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


def test_the_sign_in_page_says_how_to_verify_when_required(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(require_verified_email=True))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "ada@example.com")
        refused = web_login(client)
        assert refused.status_code == 200 and 'href="/verify-email/resend"' in refused.text
        assert "__Host-session" not in refused.headers.get("set-cookie", "")
        # L7: only the right password learns the account's state.
        wrong = web_login(client, password="not the password")
        assert 'href="/verify-email/resend"' not in wrong.text
        token = last_token(app, "ada@example.com", "verify_email")
        submit(client, f"/verify-email?token={token}", token=token)
        assert web_login(client).status_code == 303


def test_pages_and_mails_speak_the_visitors_language(client: TestClient, app: FastAPI) -> None:
    client.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    for path, text in (
        ("/register", "创建账号"),
        ("/forgot-password", "发送链接"),
        ("/verify-email/resend", "重新发送验证邮件"),
    ):
        page = client.get(path)
        assert text in page.text and '<html lang="zh-Hans">' in page.text, path
    assert sign_up_page(client, "ada@example.com").status_code == 303
    (mail,) = mails(app, "ada@example.com", "verify_email")
    assert mail["Content-Language"] == "zh-Hans"
    assert "验证您在" in str(mail["Subject"])
    refused = client.get("/reset-password?token=x")
    assert "此链接无法使用" in refused.text


def test_an_account_keeps_the_language_it_signed_up_in(client: TestClient, app: FastAPI) -> None:
    client.headers["Accept-Language"] = "zh-CN"
    sign_up_page(client, "ada@example.com")
    del client.headers["Accept-Language"]
    # A reset asked for by API without a language still mails in Chinese.
    client.post("/users/password-reset", json={"email": "ada@example.com"})
    (mail,) = mails(app, "ada@example.com", "reset_password")
    assert mail["Content-Language"] == "zh-Hans"
