"""An email change by an account with a second factor needs the factor too (M7):
whoever learnt the password must not move the account to an address of theirs.
The password is checked first; wrong codes count in the factor's own limit."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.callers import basic_headers, first_party_headers
from tests.support.factor_api import enrol, fresh_token, mails
from tests.support.factors import now_code, verified, wrong_code
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem
from userservice.app import create_app
from userservice.settings import Settings

NEW = "ada.new@example.com"


def _ask(client: TestClient, headers: dict[str, str], **fields: str) -> tuple[int, str]:
    body = {"email": NEW, "current_password": PASSWORD, **fields}
    response = client.post("/users/me/email", json=body, headers=headers)
    if response.status_code >= 400:
        return response.status_code, assert_problem(response)["code"]
    return response.status_code, ""


def _enrolled(client: TestClient, app: FastAPI) -> tuple[str, dict[str, str]]:
    register(client, EMAIL)
    verified(app, EMAIL)
    headers = first_party_headers(client)
    secret, _ = enrol(client, headers)
    return secret, fresh_token(app, headers)


def test_m7_the_change_needs_the_code_after_the_password(client: TestClient, app: FastAPI) -> None:
    secret, headers = _enrolled(client, app)
    assert _ask(client, headers) == (403, "second_factor_required")
    # The password first: a wrong one is that refusal, whatever the code.
    assert _ask(client, headers, current_password="not the password")[1] == "forbidden"
    assert _ask(client, headers, current_password="nope", code=now_code(secret))[1] == "forbidden"
    assert _ask(client, headers, code=wrong_code(secret)) == (403, "invalid_code")
    assert mails(app, NEW) == []
    assert _ask(client, headers, code=now_code(secret, 1)) == (202, "")
    assert mails(app, NEW) == ["email_change_verify"]


def test_m7_a_recovery_code_stands_in_for_the_app(client: TestClient, app: FastAPI) -> None:
    register(client, EMAIL)
    verified(app, EMAIL)
    headers = first_party_headers(client)
    _, codes = enrol(client, headers)
    fresh = fresh_token(app, headers)
    assert _ask(client, fresh, code=codes[0].upper()) == (202, "")
    assert "recovery_code_used" in mails(app, EMAIL)
    # Single use (M2).
    assert _ask(client, fresh, code=codes[0]) == (403, "invalid_code")


def test_m7_without_a_factor_nothing_more_is_asked(client: TestClient) -> None:
    register(client, EMAIL)
    assert _ask(client, basic_headers()) == (202, "")
    assert _ask(client, basic_headers(), code="123456")[0] == 202


def test_m1_wrong_codes_are_throttled_per_account(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(second_factor_limit="2/minute"))
    with TestClient(app, base_url="https://testserver") as client:
        secret, headers = _enrolled(client, app)
        for _ in range(2):
            assert _ask(client, headers, code=wrong_code(secret)) == (403, "invalid_code")
        throttled = client.post(
            "/users/me/email",
            json={"email": NEW, "current_password": PASSWORD, "code": now_code(secret, 1)},
            headers=headers,
        )
        assert throttled.status_code == 429, throttled.text
        assert int(throttled.headers["retry-after"]) >= 1
