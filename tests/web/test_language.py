"""The hosted pages in English and Simplified Chinese: the language comes from
OIDC ui_locales (carried to /login inside `next`), then the switch's cookie, then
Accept-Language; the switch is a CSRF-checked form (F8) that accepts only a
language we offer (F9) and remembers it on the account; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.oauth_flow import add_app, authorize_url, hidden
from tests.support.pages import EMAIL, attributes, csrf_token, set_cookies, web_login
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import User
from userservice.settings import Settings

LANG = "__Host-lang"
ZH = {"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}


def html_lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)">', page.text)
    assert found, page.text
    return found.group(1)


def choose(
    client: TestClient, locale: str, return_to: str = "/login", **headers: str
) -> httpx.Response:
    page = client.get("/login")
    form = {"csrf_token": csrf_token(page.text), "locale": locale, "return_to": return_to}
    response: httpx.Response = client.post(
        "/language", data=form, headers=headers, follow_redirects=False
    )
    return response


def test_english_by_default(client: TestClient) -> None:
    page = client.get("/login")
    assert html_lang(page) == "en"
    assert page.headers["content-language"] == "en"
    assert "<h1>Sign in</h1>" in page.text


def test_accept_language_picks_chinese(client: TestClient) -> None:
    page = client.get("/login", headers=ZH)
    assert html_lang(page) == "zh-Hans"
    assert page.headers["content-language"] == "zh-Hans"
    assert "<h1>登录</h1>" in page.text
    assert "电子邮件地址" in page.text and "忘记密码" in page.text and "创建账号" in page.text
    # The switch names each language in its own words, marked with its language.
    assert '<span lang="zh-Hans" aria-current="true">简体中文</span>' in page.text
    assert re.search(r'<button type="submit" name="locale" value="en" lang="en">English', page.text)


def test_traditional_chinese_is_not_served_simplified(client: TestClient) -> None:
    assert html_lang(client.get("/login", headers={"accept-language": "zh-TW"})) == "en"


def test_the_switch_sets_a_host_cookie_and_returns(client: TestClient) -> None:
    response = choose(client, "zh-Hans", "/login?login_hint=a%40b.example")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?login_hint=a%40b.example"
    attrs = attributes(set_cookies(response)[LANG])
    assert {"secure", "httponly", "path", "max-age"} <= attrs.keys()
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "lax"
    assert "domain" not in attrs
    page = client.get("/login", headers={"accept-language": "en"})
    assert html_lang(page) == "zh-Hans"  # the cookie wins over the header
    back = choose(client, "en")
    assert back.status_code == 303
    assert html_lang(client.get("/login", headers=ZH)) == "en"


def test_the_switch_needs_the_csrf_token(client: TestClient) -> None:
    client.get("/login")
    refused = client.post(
        "/language", data={"locale": "zh-Hans", "return_to": "/login"}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert LANG not in set_cookies(refused)


def test_the_switch_refuses_another_site(client: TestClient) -> None:
    refused = choose(client, "zh-Hans", origin="https://evil.example")
    assert refused.status_code == 403
    assert LANG not in set_cookies(refused)
    refused = choose(client, "zh-Hans", **{"sec-fetch-site": "cross-site"})
    assert refused.status_code == 403
    assert LANG not in set_cookies(refused)


@pytest.mark.parametrize(
    "locale", ["fr", "zh", "zh-CN", "ZH-HANS", "", "zh-Hans\r\nSet-Cookie: x=1", "en; Path=/x"]
)
def test_only_an_offered_language_is_accepted(client: TestClient, locale: str) -> None:
    # F9: not even a tag that would match: the cookie holds exactly a LOCALES value.
    refused = choose(client, locale)
    assert refused.status_code == 400
    assert LANG not in set_cookies(refused)
    assert "This language is not offered." in refused.text


def test_a_forged_cookie_changes_nothing(client: TestClient) -> None:
    client.cookies.set(LANG, '"><script>alert(1)</script>', domain="testserver")
    page = client.get("/login")
    assert html_lang(page) == "en"
    assert "<script>" not in page.text


@pytest.mark.parametrize(
    "return_to", ["//evil.example/", "https://evil.example/", "/\\evil.example", "", "account"]
)
def test_the_switch_never_leaves_the_site(client: TestClient, return_to: str) -> None:
    response = choose(client, "zh-Hans", return_to)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


def test_the_return_path_is_escaped_on_the_page(client: TestClient) -> None:
    # httpx percent-encodes <, > and "; a quote and an ampersand arrive as they are.
    page = client.get("/login?q=a'b&c=d")
    assert 'name="return_to" value="/login?q=a&#39;b&amp;c=d"' in page.text
    assert hidden(page.text, "return_to") == "/login?q=a'b&c=d"


def test_f8_an_error_page_returns_to_its_path_without_the_refused_request(
    client: TestClient,
) -> None:
    # A refused authorization request must not get its text onto our page through
    # the switch's return path (the OAuth fuzz found it: a 400 echoed the query).
    page = client.get("/oauth/authorize?client_id=nobody&response_type=Qz7echo")
    assert page.status_code == 400
    assert "Qz7echo" not in page.text
    assert hidden(page.text, "return_to") == "/oauth/authorize"


def test_ui_locales_reaches_the_login_page_through_next(client: TestClient) -> None:
    add_app(client)
    start = client.get(
        authorize_url(ui_locales="zh-CN en"),
        headers={"accept-language": "en"},
        follow_redirects=False,
    )
    assert start.status_code == 303
    login = client.get(start.headers["location"], headers={"accept-language": "en"})
    assert html_lang(login) == "zh-Hans"
    # A failed sign-in answers in the same language (the POSTed `next` carries it).
    failed = client.post(
        "/login",
        data={
            "email": EMAIL,
            "password": "wrong password",
            "csrf_token": csrf_token(login.text),
            "next": hidden(login.text, "next"),
        },
        headers={"accept-language": "en"},
    )
    assert html_lang(failed) == "zh-Hans"
    assert "电子邮件地址或密码不正确。" in failed.text
    # ui_locales wins over the cookie.
    choose(client, "en")
    assert html_lang(client.get(start.headers["location"])) == "zh-Hans"


def test_the_switch_overrides_ui_locales_where_it_returns(client: TestClient) -> None:
    add_app(client)
    start = client.get(authorize_url(ui_locales="zh-Hans"), follow_redirects=False)
    login = client.get(start.headers["location"])
    assert html_lang(login) == "zh-Hans"
    back = choose(client, "en", hidden(login.text, "return_to"))
    assert back.status_code == 303
    location = back.headers["location"]
    nested = parse_qs(urlsplit(location).query)["next"][0]
    assert parse_qs(urlsplit(nested).query)["ui_locales"] == ["en"]
    assert html_lang(client.get(location)) == "en"


def test_a_signed_in_choice_is_kept_on_the_account(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    web_login(client)
    assert stored_locale(app, user) != "zh-Hans"
    assert choose(client, "zh-Hans", "/account").status_code == 303
    assert stored_locale(app, user) == "zh-Hans"
    account = client.get("/account")
    assert html_lang(account) == "zh-Hans" and "您的账号" in account.text
    choose(client, "en", "/account")
    assert stored_locale(app, user) == "en"


def test_a_signed_out_choice_touches_no_account(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    before = stored_locale(app, user)
    assert before != "zh-Hans"
    assert choose(client, "zh-Hans").status_code == 303
    assert stored_locale(app, user) == before


def test_every_page_carries_the_switch_with_a_token(client: TestClient) -> None:
    # An error page that had no form of its own gets a CSRF cookie for the switch.
    error = client.get("/oauth/authorize", headers=ZH)
    assert error.status_code == 400
    assert html_lang(error) == "zh-Hans" and "此登录链接无效" in error.text
    assert 'action="/language"' in error.text
    assert csrf_token(error.text) == client.cookies.get("__Host-csrf")


def test_code_messages_are_translated_as_text(client: TestClient) -> None:
    # F8: texts handed in by code go through the catalog as plain text (escaped),
    # not as markup like a template's own _(); here the developer detail stays English.
    page = client.post(
        "/oauth/authorize",
        content=b"\xff\xfe<b>",
        headers={**ZH, "content-type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 400
    assert "无法读取此请求。" in page.text
    assert '<p class="detail" lang="en"><code>the body is not UTF-8</code></p>' in page.text


def test_login_page_names_the_app_and_its_ways_in(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(app_name='Acme <ID> & "Co"')
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        page = client.get("/login")
    assert "<title>Sign in · Acme &lt;ID&gt; &amp; &#34;Co&#34;</title>" in page.text
    assert '<p class="app-name">Acme &lt;ID&gt; &amp; &#34;Co&#34;</p>' in page.text
    assert '<a href="/register">Create an account</a>' in page.text
    assert '<a href="/forgot-password">Forgot password?</a>' in page.text
    assert "Your password was changed" not in page.text


def test_login_page_after_a_reset_says_so(client: TestClient) -> None:
    page = client.get("/login?reset=1")
    assert (
        '<p class="notice" role="status">Your password was changed. Sign in with the new one.</p>'
        in page.text
    )
    assert "您的密码已更改。请使用新密码登录。" in client.get("/login?reset=1", headers=ZH).text


def test_a_login_error_is_tied_to_both_fields(client: TestClient, user: dict[str, Any]) -> None:
    failed = web_login(client, password="not the password")
    assert failed.status_code == 200
    assert '<p id="form-error" class="error" role="alert">' in failed.text
    for field in ("email", "password"):
        tag = re.search(rf'<input id="{field}"[^>]*>', failed.text)
        assert tag, failed.text
        assert 'aria-invalid="true"' in tag.group(0)
        assert 'aria-describedby="form-error"' in tag.group(0)
    fresh = client.get("/login")
    assert "aria-invalid" not in fresh.text


def stored_locale(app: FastAPI, user: dict[str, Any]) -> str | None:
    with Session(engine_of(app)) as session:
        found = session.get(User, uuid.UUID(user["id"]))
        assert found is not None
        return found.locale
