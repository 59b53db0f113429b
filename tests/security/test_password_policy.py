"""The password policy's rules and the messages it gives (E2), which the pages show
in the visitor's language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.pages import csrf_token
from userservice.security.password_policy import MAX_LENGTH, MIN_LENGTH, password_problem


def test_e2_messages_name_the_limits_the_policy_applies() -> None:
    short = password_problem("x" * (MIN_LENGTH - 2) + "y")
    assert short is not None and f" {MIN_LENGTH} " in short
    long = password_problem("correct horse " * (MAX_LENGTH // 14 + 1))
    assert long is not None and f" {MAX_LENGTH} " in long
    assert password_problem("x" * MIN_LENGTH) is not None  # one repeated character
    assert password_problem("password1") is not None  # common
    assert password_problem("ada.lovelace", email="Ada.Lovelace@example.com") is not None
    assert password_problem("correct horse battery staple") is None


def test_e2_a_refused_password_is_explained_in_the_pages_language(client: TestClient) -> None:
    client.headers["Accept-Language"] = "zh-CN"
    page = client.get("/register")
    form = {"email": "li@example.com", "password": "short", "csrf_token": csrf_token(page.text)}
    answer = client.post("/register", data=form)
    assert answer.status_code == 400, answer.text
    assert "密码至少需要 8 个字符。" in answer.text
    assert "Password must" not in answer.text
