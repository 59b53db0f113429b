"""M7 on the account page: a user with two-step verification changes the sign-in
address only with the second factor too (a code from the app or a recovery code),
shown as an error on the code field; a user without one sees no code field."""

from __future__ import annotations

import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from tests.support.factors import enable, now_code, post, verified, wrong_code
from tests.support.journeys import mails
from tests.support.pages import EMAIL

NEW = "new@example.com"
CHANGE = {"email": NEW, "current_password": PASSWORD}


def test_without_a_factor_there_is_no_code_field(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    assert 'id="email_code"' not in client.get("/account").text
    assert post(client, "/account/email", **CHANGE).status_code == 303
    assert mails(app, NEW, "email_change_verify")


def test_m7_the_password_alone_does_not_change_the_address(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    verified(app, EMAIL)
    secret, codes, _ = enable(client)
    page = client.get("/account").text
    assert 'id="email_code" name="code"' in page and 'autocomplete="one-time-code"' in page
    alone = post(client, "/account/email", **CHANGE)
    assert alone.status_code == 400
    assert 'id="email_code-error"' in alone.text and 'aria-invalid="true"' in alone.text
    assert f'value="{NEW}"' in alone.text  # what was typed stays in the form
    wrong = post(client, "/account/email", **CHANGE, code=wrong_code(secret))
    assert wrong.status_code == 400 and "That code is not correct" in wrong.text
    # The password is still checked first: a wrong one with a right code is refused.
    bad_password = {**CHANGE, "current_password": "wrong guess"}
    refused = post(client, "/account/email", **bad_password, code=now_code(secret, ahead=1))
    assert refused.status_code == 400 and 'id="email_password-error"' in refused.text
    assert not mails(app, NEW, "email_change_verify")
    done = post(client, "/account/email", **CHANGE, code=now_code(secret, ahead=1))
    assert done.status_code == 303 and done.headers["location"] == "/account?done=email-sent"
    assert mails(app, NEW, "email_change_verify")
    assert len(codes) == 10


def test_m7_a_recovery_code_works_once(client: TestClient, app: FastAPI, signed_in: str) -> None:
    verified(app, EMAIL)
    _, codes, _ = enable(client)
    spaced = codes[0].upper().replace("-", " ")  # case, spaces and dashes ignored
    assert post(client, "/account/email", **CHANGE, code=spaced).status_code == 303
    again = post(
        client, "/account/email", **{**CHANGE, "email": "other@example.com"}, code=codes[0]
    )
    assert again.status_code == 400 and 'id="email_code-error"' in again.text
    assert "9 of 10" in client.get("/account").text
    assert mails(app, EMAIL, "recovery_code_used")


def test_the_code_field_takes_no_markup(client: TestClient, app: FastAPI, signed_in: str) -> None:
    verified(app, EMAIL)
    enable(client)
    odd = post(client, "/account/email", **CHANGE, code='"><script>alert(1)</script>')
    assert odd.status_code == 400 and "<script>" not in odd.text
    assert pyotp  # the codes above are computed with it, as an app would


def test_m7_the_code_is_trimmed_and_bounded(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    verified(app, EMAIL)
    secret, _codes, _ = enable(client)
    # A code beyond any code's length is refused as a wrong code, never a 500.
    huge = post(client, "/account/email", **CHANGE, code="1" * 10_000)
    assert huge.status_code == 400 and 'id="email_code-error"' in huge.text
    # Spaces around it, as a paste brings them, are not part of the code.
    padded = post(client, "/account/email", **CHANGE, code=f"  {now_code(secret, ahead=1)}\t ")
    assert padded.status_code == 303, padded.text


def test_m1_m7_a_throttled_code_is_reported_on_the_code_field(
    client: TestClient, app: FastAPI, signed_in: str
) -> None:
    verified(app, EMAIL)
    secret, _codes, _ = enable(client)
    answer = post(client, "/account/email", **CHANGE, code=wrong_code(secret))
    for _ in range(10):  # the account's code limit (settings.second_factor_limit)
        if answer.status_code == 429:
            break
        assert answer.status_code == 400, answer.text
        answer = post(client, "/account/email", **CHANGE, code=wrong_code(secret))
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert 'id="email_code-error"' in answer.text and "Too many attempts" in answer.text
    assert 'id="email_password-error"' not in answer.text
    assert not mails(app, NEW, "email_change_verify")
