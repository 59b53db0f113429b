"""The mail journeys end to end through the JSON API with a standard HTTP client
and a real SMTP server on loopback: sign up, the mail arrives, verify, sign in,
forget the password, the mail arrives, reset, the old tokens are dead, sign in
with the new password; in English and in Chinese (E8, L3, L4)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login
from tests.support.smtp import smtp_server
from userservice.app import create_app
from userservice.settings import Settings

NEW_PASSWORD = "a brand new passphrase"
SUBJECTS = {
    "en": ("Verify your email address for Acme", "Set a new password for Acme"),
    "zh-Hans": ("验证您在 Acme 的电子邮件地址", "为 Acme 设置新密码"),
}


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@pytest.mark.parametrize("language", ["en", "zh-Hans"])
def test_the_journeys_through_the_api_and_smtp(
    make_settings: Callable[..., Settings], language: str
) -> None:
    with smtp_server() as server:
        settings = make_settings(
            mail_url=server.url(query="?tls=none"),
            app_name="Acme",
            require_verified_email=True,
        )
        with TestClient(create_app(settings), base_url="https://testserver") as client:
            client.headers["Accept-Language"] = language
            body = {"email": "ada@example.com", "password": PASSWORD}
            assert client.post("/users", json=body).status_code == 201
            [verify] = server.inbox.wait_for(1)
            assert verify.recipients == ["ada@example.com"]
            assert verify.message["Subject"] == SUBJECTS[language][0]
            link = verify.link("/verify-email")
            assert link.startswith("https://testserver/verify-email?token=")
            confirm = {"token": token_of(link)}
            assert client.post("/users/verification/confirm", json=confirm).status_code == 204
            old = login(client, "ada@example.com")

            reset_request = {"email": "ada@example.com"}
            assert client.post("/users/password-reset", json=reset_request).status_code == 202
            reset = server.inbox.wait_for(2)[1]
            assert reset.message["Subject"] == SUBJECTS[language][1]
            confirm = {"token": token_of(reset.link("/reset-password")), "password": NEW_PASSWORD}
            assert client.post("/users/password-reset/confirm", json=confirm).status_code == 204
            notice = server.inbox.wait_for(3)[2]
            assert notice.message["Content-Language"] == language

            assert client.get("/users/me", headers=bearer(old["access_token"])).status_code == 401
            refresh = {"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}
            assert client.post("/oauth/token", data=refresh).status_code == 400
            fresh = login(client, "ada@example.com", NEW_PASSWORD)
            me = client.get("/users/me", headers=bearer(fresh["access_token"]))
            assert me.status_code == 200 and me.json()["email_verified"] is True
