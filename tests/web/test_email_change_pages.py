"""The pages of the mailed email-change links (web/email_change.py): a GET checks the
link and offers a button, never using it; the POST uses it once (L21) and says what
happened; refused links get one clear page; CSRF and origin checks hold (F4); no
input gives a 500; English and Chinese."""

from __future__ import annotations

import time

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
from userservice.security.response_floor import FLOOR_SECONDS

ADA, NEW = "ada@example.com", "ada@example.org"
PAGES = ["/confirm-email-change", "/undo-email-change"]


def ask(client: TestClient, email: str = NEW) -> None:
    body = {"email": email, "current_password": PASSWORD}
    asked = client.post("/users/me/email", json=body, auth=(ADA, PASSWORD))
    assert asked.status_code == 202, asked.text


def press(client: TestClient, page: str, token: str) -> httpx.Response:
    """Open the mailed link and press its button."""
    offered = client.get(f"{page}?token={token}")
    assert offered.status_code == 200, offered.text
    assert hidden_token(offered.text) == token
    return submit(client, f"{page}?token={token}", token=token)


def test_confirm_then_undo_by_the_pages(client: TestClient, app: FastAPI) -> None:
    register(client, ADA)
    assert web_login(client, ADA).status_code == 303
    session = client.cookies.get("__Host-session")
    assert session
    ask(client)
    token = last_token(app, NEW, "email_change_verify")
    # Opening the link twice (a mail scanner, then the person) uses nothing.
    assert client.get(f"/confirm-email-change?token={token}").status_code == 200
    done = press(client, "/confirm-email-change", token)
    assert done.status_code == 200
    assert f"<strong>{NEW}</strong>" in done.text and 'role="status"' in done.text
    again = submit(client, f"/confirm-email-change?token={token}", token=token)
    assert again.status_code == 400 and 'role="alert"' in again.text
    login(client, NEW)
    undo = last_token(app, ADA, "email_change_undo")
    restored = press(client, "/undo-email-change", undo)
    assert restored.status_code == 200
    assert "We sent a link to choose a new password" in restored.text
    assert not session_opens(app, session)
    assert client.get(f"/undo-email-change?token={undo}").status_code == 400
    assert len(mails(app, ADA, "reset_password")) == 1


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    "token", ["", "x", "A" * 43, "A" * 5000, "%00" * 43, "%ff%fe", "%C3%BC" * 43, XSS]
)
def test_bad_links_get_a_clear_page(client: TestClient, page: str, token: str) -> None:
    response = client.get(f"{page}?token={token}")
    assert response.status_code == 400
    assert "<script>" not in response.text and 'role="alert"' in response.text
    assert 'name="token"' not in response.text


def test_a_link_of_another_purpose_is_refused(client: TestClient, app: FastAPI) -> None:
    register(client, ADA)
    verify = last_token(app, ADA, "verify_email")
    for page in PAGES:
        assert client.get(f"{page}?token={verify}").status_code == 400
        assert submit(client, f"{page}?token=x", token=verify).status_code == 400
    ask(client)
    change = last_token(app, NEW, "email_change_verify")
    assert client.get(f"/undo-email-change?token={change}").status_code == 400


@pytest.mark.parametrize("value", ["A" * 43, "a\x00b", "ü" * 400, XSS, "A" * 100_000])
def test_no_input_gives_a_500(client: TestClient, value: str) -> None:
    for page in PAGES:
        html = client.get("/forgot-password").text
        response = client.post(
            page, data={"csrf_token": csrf_token(html), "token": value}, follow_redirects=False
        )
        assert response.status_code in (400, 413), (page, response.text)
        assert "<script>alert" not in response.text


@pytest.mark.parametrize("page", PAGES)
def test_posts_need_the_csrf_token_and_our_origin(
    client: TestClient, app: FastAPI, page: str
) -> None:
    register(client, ADA)
    ask(client)
    token = last_token(app, NEW, "email_change_verify")
    client.get("/forgot-password")  # holds a CSRF cookie
    missing = client.post(page, data={"token": token}, follow_redirects=False)
    assert missing.status_code == 403
    html = client.get("/forgot-password").text
    foreign = client.post(
        page,
        data={"csrf_token": csrf_token(html), "token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    garbled = client.post(
        page,
        content=f"csrf_token={csrf_token(html)}&token=%ff%fe".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert garbled.status_code == 400
    # Nothing was used: the link still changes the address.
    assert press(client, "/confirm-email-change", token).status_code == 200


@pytest.mark.parametrize("page", PAGES)
def test_pages_keep_their_protections(client: TestClient, page: str) -> None:
    check_page_headers(client.get(f"{page}?token=x"))


def test_the_pages_and_mails_speak_chinese(client: TestClient, app: FastAPI) -> None:
    client.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    register(client, ADA)  # the account's language from now on
    ask(client)
    (mail,) = mails(app, NEW, "email_change_verify")
    assert mail["Content-Language"] == "zh-Hans"
    token = last_token(app, NEW, "email_change_verify")
    offered = client.get(f"/confirm-email-change?token={token}")
    assert '<html lang="zh-Hans">' in offered.text and "确认我的新地址" in offered.text
    done = press(client, "/confirm-email-change", token)
    assert "您的登录地址现在是" in done.text
    undo = last_token(app, ADA, "email_change_undo")
    assert "撤销此更改" in client.get(f"/undo-email-change?token={undo}").text
    assert "您的地址已恢复" in press(client, "/undo-email-change", undo).text
    assert "此链接无效" in client.get("/undo-email-change?token=x").text


def test_the_account_form_answers_every_address_at_the_floor_l20(
    client: TestClient, app: FastAPI
) -> None:
    """The account page's form: a taken address queues a notice, a free one a token
    and a link; both answers wait for the same floor, so their time tells nothing."""
    register(client, ADA)
    register(client, "bob@example.com")
    assert web_login(client, ADA).status_code == 303
    answers = []
    for address in ("bob@example.com", NEW, "BOB@example.com", "carol@example.com"):
        start = time.perf_counter()
        answer = submit(
            client, "/account", "/account/email", email=address, current_password=PASSWORD
        )
        answers.append((answer.status_code, answer.headers.get("location")))
        assert time.perf_counter() - start >= FLOOR_SECONDS, address
    assert set(answers) == {(303, "/account?done=email-sent")}
    assert len(mails(app, "bob@example.com", "email_change_taken")) == 2
