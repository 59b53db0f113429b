"""POST /users as the mail journeys changed it: the verification mail is queued
with the account, registrations are throttled per client (L5), and with
`registration_reveals_accounts` off every address gets the same 202 (L1), on
SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, login, register
from tests.support.journeys import last_token, mails
from tests.support.problems import assert_problem
from tests.support.timing import assert_one_response_time, interleaved
from userservice.app import create_app
from userservice.settings import Settings


def test_non_revealing_registration_answers_202_for_every_address(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(registration_reveals_accounts=False))
    with TestClient(app, base_url="https://testserver") as client:
        body = {"email": "ada@example.com", "password": PASSWORD}
        first = client.post("/users", json=body)
        taken = client.post("/users", json={**body, "password": "somebody else's words"})
        other = client.post("/users", json={**body, "email": "bob@example.com"})
        answers = {
            (r.status_code, r.content, r.headers.get("location")) for r in (first, taken, other)
        }
        assert answers == {(202, first.content, None)}
        assert len(mails(app, "ada@example.com", "verify_email")) == 1
        assert len(mails(app, "ada@example.com", "signup_existing")) == 1
        assert len(mails(app, "bob@example.com", "verify_email")) == 1
        login(client, "ada@example.com")  # the first password, unchanged


def test_non_revealing_registration_answers_at_one_time(
    make_settings: Callable[..., Settings],
) -> None:
    # L1, L2: a taken address (a failed insert, then the owner's mail) and a new one
    # (the account and its mail) wait for the same floor.
    app = create_app(
        make_settings(registration_reveals_accounts=False, mail_limit_per_ip="1000/hour")
    )
    with TestClient(app, base_url="https://testserver") as client:
        fresh = itertools.count()

        def sign_up(email: str) -> Callable[[], None]:
            def send() -> None:
                body = {"email": email.format(next(fresh)), "password": PASSWORD}
                assert client.post("/users", json=body).status_code == 202

            return send

        sign_up("ada@example.com")()
        samples = interleaved(
            5, {"taken": sign_up("ada@example.com"), "new": sign_up("new{}@example.com")}
        )
    assert_one_response_time(samples)


def test_registration_is_throttled_per_client(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(mail_limit_per_ip="2/hour"))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "a@example.com")
        assert (
            client.post("/users", json={"email": "a@example.com", "password": PASSWORD}).status_code
            == 409
        )
        refused = client.post("/users", json={"email": "c@example.com", "password": PASSWORD})
        assert refused.status_code == 429 and assert_problem(refused)["code"] == "too_many_attempts"
        assert int(refused.headers["retry-after"]) > 0
        reset = client.post("/users/password-reset", json={"email": "a@example.com"})
        assert reset.status_code == 429  # one window for every mail request of a client


def _changed_away(client: TestClient, app: FastAPI) -> str:
    """ada@example.com registered, then moved to ada@example.org: the undo token."""
    created = client.post("/users", json={"email": "ada@example.com", "password": PASSWORD})
    assert created.status_code in (201, 202), created.text
    body = {"email": "ada@example.org", "current_password": PASSWORD}
    asked = client.post("/users/me/email", json=body, auth=("ada@example.com", PASSWORD))
    assert asked.status_code == 202, asked.text
    change = {"token": last_token(app, "ada@example.org", "email_change_verify")}
    assert client.post("/users/email-change/confirm", json=change).status_code == 204
    return last_token(app, "ada@example.com", "email_change_undo")


@pytest.mark.parametrize("reveal", [True, False])
def test_the_old_address_of_a_change_cannot_be_registered_until_undone_l21(
    make_settings: Callable[..., Settings], reveal: bool
) -> None:
    # Whoever changed the address knew the password: an account of their own on the
    # old address would make the undo link useless and receive the next reset link.
    app = create_app(make_settings(registration_reveals_accounts=reveal))
    with TestClient(app, base_url="https://testserver") as client:
        undo = _changed_away(client, app)
        before, to_old = len(mails(app)), len(mails(app, "ada@example.com"))
        body = {"email": "ADA@example.com", "password": "the attacker's passphrase"}
        refused = client.post("/users", json=body)
        taken = client.post("/users", json={**body, "email": "ada@example.org"})
        # The answer of a taken address, in either mode.
        assert (refused.status_code, refused.content) == (taken.status_code, taken.content)
        assert refused.status_code == (409 if reveal else 202)
        # No mail for the reserved address: its holder is mid-undo (only the owner
        # of the taken one is told, in the non-revealing mode).
        assert len(mails(app)) == before + (0 if reveal else 1)
        assert len(mails(app, "ada@example.com")) == to_old
        assert client.post("/users/email-change/undo", json={"token": undo}).status_code == 204
        reset = last_token(app, "ada@example.com", "reset_password")
        new = {"token": reset, "password": "ada's fresh passphrase"}
        assert client.post("/users/password-reset/confirm", json=new).status_code == 204
        login(client, "ada@example.com", "ada's fresh passphrase")
