"""The account page's forms over HTTPS (TestClient), on SQLite and PostgreSQL: each
action answers 303 with a fixed notice or the page again with the form's errors;
every POST needs the CSRF token (F4); the password change keeps this browser in a
new session and ends every other one (L28); deletion needs the password (L29)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.callers import THIRD_PARTY, add_third_party, basic_headers, third_party_token
from tests.support.journeys import mails
from tests.support.pages import (
    EMAIL,
    SESSION,
    XSS,
    check_page_headers,
    csrf_token,
    session_opens,
    web_login,
)

NEW_PASSWORD = "a brand new passphrase here"
SECTIONS = ("profile", "email", "password", "sessions", "apps", "data", "delete")
POSTS = (
    "/account/profile",
    "/account/email",
    "/account/password",
    "/account/sessions/end-all",
    "/account/sessions/AAAAAAAAAAAAAAAAAAAAAA/end",
    f"/account/grants/{THIRD_PARTY}/revoke",
    "/account/delete",
)


def _post(client: TestClient, path: str, **fields: str) -> httpx.Response:
    token = csrf_token(client.get("/account").text)
    response: httpx.Response = client.post(
        path, data={"csrf_token": token, **fields}, follow_redirects=False
    )
    return response


def _second_browser(app: FastAPI) -> TestClient:
    other = TestClient(app, base_url="https://testserver", headers={"User-Agent": "Other/1.0"})
    assert web_login(other).status_code == 303
    return other


def test_the_page_has_every_section(client: TestClient, signed_in: str) -> None:
    page = client.get("/account")
    assert page.status_code == 200
    check_page_headers(page)
    for section in SECTIONS:
        assert f'<section id="{section}" aria-labelledby="{section}-heading">' in page.text
        assert f'<h2 id="{section}-heading">' in page.text
    assert "(This browser)" in page.text and 'href="/account/export"' in page.text


@pytest.mark.parametrize("done", ["nothing", XSS, ""])
def test_a_notice_is_only_one_of_ours(client: TestClient, signed_in: str, done: str) -> None:
    page = client.get("/account", params={"done": done})
    assert 'class="notice"' not in page.text and "<script>" not in page.text


def test_every_post_needs_the_csrf_token(client: TestClient, signed_in: str) -> None:
    """F4: no token, a wrong one, or another site's origin: 403, and nothing ends."""
    for path in POSTS:
        assert client.post(path, data={}, follow_redirects=False).status_code == 403
        wrong = {"csrf_token": "x" * 43, "confirm": "yes", "current_password": PASSWORD}
        assert client.post(path, data=wrong, follow_redirects=False).status_code == 403
        token = csrf_token(client.get("/account").text)
        foreign = client.post(
            path,
            data={"csrf_token": token, "confirm": "yes", "current_password": PASSWORD},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert foreign.status_code == 403, path
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert login(client, EMAIL)["access_token"]


def test_a_session_that_ended_meanwhile_goes_to_sign_in(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    token = csrf_token(client.get("/account").text)
    other = _second_browser(app)
    assert _post(other, "/account/sessions/end-all").status_code == 303
    for path in POSTS:
        response = client.post(
            path,
            data={"csrf_token": token, "confirm": "yes", "current_password": PASSWORD},
            follow_redirects=False,
        )
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login?next=%2Faccount"
    assert client.get("/account/export", follow_redirects=False).status_code == 303


def test_rename(client: TestClient, signed_in: str) -> None:
    saved = _post(client, "/account/profile", display_name=f"  Ada {XSS} ")
    assert saved.status_code == 303 and saved.headers["location"] == "/account?done=profile"
    page = client.get(saved.headers["location"]).text
    assert "Your name was saved." in page and "<script>" not in page
    assert "Ada &#34;&gt;&lt;script&gt;" in page
    refused = _post(client, "/account/profile", display_name="Ada\x07")
    assert refused.status_code == 400
    assert 'id="display_name-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert _post(client, "/account/profile", display_name="x" * 201).status_code == 400
    assert _post(client, "/account/profile", display_name="").status_code == 303


def test_a_password_change_needs_the_current_password(client: TestClient, signed_in: str) -> None:
    for fields, field in (
        ({"current_password": "", "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": "wrong password", "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": ""}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ):
        refused = _post(client, "/account/password", **fields)
        assert refused.status_code == 400, fields
        assert f'id="{field}-error"' in refused.text
        assert PASSWORD not in refused.text
    assert login(client, EMAIL, PASSWORD)["access_token"]


def test_a_password_change_keeps_this_browser_in_a_new_session_only(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    """L28: this browser goes on under a new session id; the other browser, the
    old id and every token end."""
    other = _second_browser(app)
    tokens = login(client, EMAIL)
    changed = _post(
        client, "/account/password", current_password=PASSWORD, new_password=NEW_PASSWORD
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/account?done=password"
    new_id = client.cookies.get(SESSION)
    assert new_id and new_id != signed_in
    assert session_opens(app, new_id) and not session_opens(app, signed_in)
    assert other.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    page = client.get(changed.headers["location"]).text
    assert "Your password was changed." in page and page.count("Last seen") == 1
    assert login(client, EMAIL, NEW_PASSWORD)["access_token"]


def test_end_another_session_and_not_someone_elses(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    """L22: only the user's own sessions end from the page."""
    other = _second_browser(app)
    register(client, "bob@example.com")
    bob = TestClient(app, base_url="https://testserver")
    assert web_login(bob, "bob@example.com").status_code == 303
    bobs = bob.get("/users/me/sessions", headers=basic_headers("bob@example.com")).json()[0]["id"]
    assert _post(client, f"/account/sessions/{bobs}/end").status_code == 303
    assert bob.get("/account", follow_redirects=False).status_code == 200
    [handle] = [
        s["id"]
        for s in client.get("/users/me/sessions", headers=basic_headers(EMAIL)).json()
        if s["user_agent"] == "Other/1.0"
    ]
    ended = _post(client, f"/account/sessions/{handle}/end")
    assert ended.headers["location"] == "/account?done=session-ended"
    assert other.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_sign_out_everywhere_ends_this_browser_too(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    """L23: from the page, every session (this one too) and every token."""
    other = _second_browser(app)
    tokens = login(client, EMAIL)
    ended = _post(client, "/account/sessions/end-all")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/login?signed_out=everywhere"
    assert not session_opens(app, signed_in)
    assert other.get("/account", follow_redirects=False).status_code == 303
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    notice = client.get(ended.headers["location"])
    assert notice.status_code == 200 and "You were signed out everywhere" in notice.text


def test_withdraw_an_app(client: TestClient, app: FastAPI, signed_in: str) -> None:
    add_third_party(client)
    tokens = third_party_token(client, "openid profile offline_access")
    page = client.get("/account").text
    assert "See your display name" in page and "Photo App" in page
    withdrawn = _post(client, f"/account/grants/{THIRD_PARTY}/revoke")
    assert withdrawn.headers["location"] == "/account?done=app-withdrawn"
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    after = client.get(withdrawn.headers["location"]).text
    assert "The app&#39;s access was withdrawn." in after and 'id="no-grants"' in after
    # A second press (another tab) is no error.
    assert _post(client, f"/account/grants/{THIRD_PARTY}/revoke").status_code == 303


def test_change_email_sends_a_link_and_changes_nothing_yet(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    """L20: the same notice for a free and a taken address; nothing changes."""
    register(client, "bob@example.com")
    for address in ("new@example.com", "bob@example.com"):
        asked = _post(client, "/account/email", email=address, current_password=PASSWORD)
        assert asked.status_code == 303 and asked.headers["location"] == "/account?done=email-sent"
    assert mails(app, "new@example.com", "email_change_verify")
    page = client.get("/account?done=email-sent").text
    assert "Check your mail at the new address" in page
    assert f'<dd id="account-email">{EMAIL}</dd>' in page


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "", "current_password": PASSWORD}, "email"),
        ({"email": "not an address", "current_password": PASSWORD}, "email"),
        ({"email": EMAIL, "current_password": PASSWORD}, "email"),
        ({"email": "new@example.com", "current_password": ""}, "email_password"),
        ({"email": "new@example.com", "current_password": "wrong one"}, "email_password"),
    ],
)
def test_change_email_refusals(
    client: TestClient, app: FastAPI, signed_in: str, fields: dict[str, str], field: str
) -> None:
    refused = _post(client, "/account/email", **fields)
    assert refused.status_code == 400
    assert f'id="{field}-error"' in refused.text
    assert mails(app, "new@example.com", "email_change_verify") == []


def test_export_is_a_json_attachment_of_the_users_data(client: TestClient, signed_in: str) -> None:
    response = client.get("/account/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="account-data.json"'
    assert response.headers["cache-control"] == "no-store"
    assert EMAIL in response.text


def test_deletion_needs_the_box_and_the_password(
    client: TestClient, app: FastAPI, signed_in: str, user: dict[str, Any]
) -> None:
    """L29: without both, the account stays."""
    for fields, field in (
        ({"current_password": PASSWORD}, "confirm"),
        ({"current_password": PASSWORD, "confirm": "no"}, "confirm"),
        ({"current_password": "", "confirm": "yes"}, "delete_password"),
        ({"current_password": "wrong one", "confirm": "yes"}, "delete_password"),
    ):
        refused = _post(client, "/account/delete", **fields)
        assert refused.status_code == 400, fields
        assert f'id="{field}-error"' in refused.text
    assert login(client, EMAIL)["access_token"]
    deleted = _post(client, "/account/delete", current_password=PASSWORD, confirm="yes")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/login?deleted=1"
    assert not session_opens(app, signed_in)
    assert (
        client.post(
            "/oauth/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        ).json()["error"]
        == "invalid_grant"
    )
    assert "Your account was deleted." in client.get("/login?deleted=1").text


def test_the_page_and_its_errors_in_chinese(client: TestClient, signed_in: str) -> None:
    client.headers["Accept-Language"] = "zh-CN"
    page = client.get("/account")
    assert '<html lang="zh-Hans">' in page.text and "您的登录位置" in page.text
    refused = _post(client, "/account/password", current_password="wrong", new_password="x")
    assert refused.status_code == 400 and "当前密码不正确。" in refused.text
    done = client.get("/account?done=session-ended").text
    assert "该会话已退出登录。" in done
