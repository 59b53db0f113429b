"""The mailed-link journeys through the JSON API (api/account_mail.py): verify an
address, reset a forgotten password; single-use tokens (E8), answers that never
tell whether an address has an account (L2), the reset's revocations (L4) and the
verified-address requirement (L7), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.journeys import last_token, link_in, mails
from tests.support.oauth_flow import add_app, obtain_code, redeem, sign_in
from tests.support.problems import assert_problem
from tests.support.server import running_server
from tests.support.timing import assert_one_response_time, interleaved
from userservice.app import create_app
from userservice.db.models import AccountToken
from userservice.settings import Settings
from userservice.wiring import wired

NEW_PASSWORD = "a brand new passphrase"
BAD_TOKENS = [
    "",
    "x",
    "A" * 43,  # the right shape, never issued
    "A" * 5000,
    "abc\x00def" + "A" * 36,
    "ü" * 43,
    "\ud800" * 43,
    "../../etc/passwd",
]


def post_json(client: TestClient, path: str, body: dict[str, object]) -> httpx.Response:
    # json.dumps escapes what UTF-8 cannot carry (a lone surrogate) as JSON allows.
    headers = {"Content-Type": "application/json"}
    return client.post(path, content=json.dumps(body), headers=headers)


def confirm_verification(client: TestClient, token: object) -> httpx.Response:
    return post_json(client, "/users/verification/confirm", {"token": token})


def confirm_reset(
    client: TestClient, token: object, password: str = NEW_PASSWORD
) -> httpx.Response:
    return post_json(
        client, "/users/password-reset/confirm", {"token": token, "password": password}
    )


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert assert_problem(response)["code"] == "invalid_token"


def claims(jwt: str) -> dict[str, Any]:
    """A token's payload, unverified: the test only reads what was issued."""
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def me(client: TestClient, access_token: str) -> dict[str, Any]:
    response = client.get("/users/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_registration_mails_a_link_that_verifies_the_address(
    client: TestClient, app: FastAPI
) -> None:
    register(client, "ada@example.com")
    tokens = login(client, "ada@example.com", scope="openid profile email")
    assert me(client, tokens["access_token"])["email_verified"] is False
    (mail,) = mails(app, "ada@example.com", "verify_email")
    # L3: the link is under the configured public URL, whatever Host the request had.
    assert link_in(mail).startswith("https://testserver/verify-email?token=")
    token = link_in(mail).split("token=")[1]
    assert len(token) >= 43  # 256 bits
    assert confirm_verification(client, token).status_code == 204
    assert me(client, tokens["access_token"])["email_verified"] is True
    info = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert info.json()["email_verified"] is True
    # The ID token of a code flow started now says so too.
    add_app(client, first_party=True)
    sign_in(client, email="ada@example.com")
    code, verifier = obtain_code(client, scope="openid email")
    id_token = redeem(client, code, verifier).json()["id_token"]
    assert claims(id_token)["email_verified"] is True
    assert_invalid_token(confirm_verification(client, token))  # E8: single-use


def test_links_use_the_configured_url_not_the_host_header(client: TestClient, app: FastAPI) -> None:
    response = client.post(
        "/users",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Host": "evil.example"},
    )
    assert response.status_code in (201, 400), response.text
    for mail in mails(app):
        assert "evil.example" not in mail.as_string()


@pytest.mark.parametrize("token", BAD_TOKENS, ids=range(len(BAD_TOKENS)))
def test_tampered_tokens_are_invalid_token_and_change_nothing(
    client: TestClient, app: FastAPI, token: str
) -> None:
    register(client, "ada@example.com")
    assert_invalid_token(confirm_verification(client, token))
    assert_invalid_token(confirm_reset(client, token))
    # The real link still works afterwards.
    real = last_token(app, "ada@example.com", "verify_email")
    assert confirm_verification(client, real).status_code == 204


def test_a_token_of_another_purpose_is_invalid(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    verify = last_token(app, "ada@example.com", "verify_email")
    assert_invalid_token(confirm_reset(client, verify))
    assert (
        client.post("/users/password-reset", json={"email": "ada@example.com"}).status_code == 202
    )
    reset = last_token(app, "ada@example.com", "reset_password")
    assert_invalid_token(confirm_verification(client, reset))
    login(client, "ada@example.com")  # the password did not change
    assert confirm_reset(client, reset).status_code == 204


def test_an_expired_token_is_invalid(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    token = last_token(app, "ada@example.com", "verify_email")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with wired(app).accounts.db.unit_of_work() as session:
        session.execute(update(AccountToken).values(expires_at=past))
    assert_invalid_token(confirm_verification(client, token))
    tokens = login(client, "ada@example.com", scope="openid profile email")
    assert me(client, tokens["access_token"])["email_verified"] is False


def test_a_verification_link_proves_only_its_own_address(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    token = last_token(app, "ada@example.com", "verify_email")
    changed = client.post(
        "/users/me/email",
        json={"email": "ada@example.org", "current_password": PASSWORD},
        auth=("ada@example.com", PASSWORD),
    )
    assert changed.status_code == 202, changed.text
    # Asking changes nothing: the old address's link still verifies the old address.
    change = last_token(app, "ada@example.org", "email_change_verify")
    confirmed = client.post("/users/email-change/confirm", json={"token": change})
    assert confirmed.status_code == 204, confirmed.text
    assert_invalid_token(confirm_verification(client, token))
    access = login(client, "ada@example.org", scope="openid profile email")["access_token"]
    # The change link proved the new address; the old link proves nothing any more.
    assert me(client, access)["email_verified"] is True


@pytest.mark.parametrize("path", ["/users/verification", "/users/password-reset"])
def test_asking_for_a_mail_answers_the_same_for_every_address(
    client: TestClient, app: FastAPI, path: str
) -> None:
    register(client, "ada@example.com")
    before = len(mails(app))
    answers = [
        client.post(path, json={"email": email})
        for email in ("ada@example.com", "nobody@example.com", "ADA@example.com")
    ]
    assert {(a.status_code, a.content) for a in answers} == {
        (answers[0].status_code, answers[0].content)
    }
    assert answers[0].status_code == 202
    kind = "verify_email" if "verification" in path else "reset_password"
    assert len(mails(app, "ada@example.com", kind)) == (3 if kind == "verify_email" else 2)
    assert not mails(app, "nobody@example.com")
    assert len(mails(app)) == before + 2


def test_asking_for_a_mail_answers_at_one_time(make_settings: Callable[..., Settings]) -> None:
    # L2: a known, unverified, verified or unknown address: every 202 waits for the
    # same floor, so none tells them apart by its time.
    app = create_app(make_settings(mail_limit_per_ip="1000/hour"))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "ada@example.com")
        register(client, "bob@example.com")
        confirm_verification(client, last_token(app, "bob@example.com", "verify_email"))
        unknown = itertools.count()

        def ask(path: str, email: str) -> Callable[[], None]:
            def send() -> None:
                answer = client.post(path, json={"email": email.format(next(unknown))})
                assert answer.status_code == 202, answer.text

            return send

        samples = interleaved(
            5,
            {
                "reset known": ask("/users/password-reset", "ada@example.com"),
                "reset unknown": ask("/users/password-reset", "n{}@example.com"),
                "verify unverified": ask("/users/verification", "ada@example.com"),
                "verify verified": ask("/users/verification", "bob@example.com"),
                "verify unknown": ask("/users/verification", "n{}@example.com"),
            },
        )
    assert_one_response_time(samples)


def test_no_new_verification_mail_for_a_verified_address(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    confirm_verification(client, last_token(app, "ada@example.com", "verify_email"))
    assert client.post("/users/verification", json={"email": "ada@example.com"}).status_code == 202
    assert len(mails(app, "ada@example.com", "verify_email")) == 1


def test_reset_ends_every_session_and_token_and_mails_a_notice(
    client: TestClient, app: FastAPI
) -> None:
    register(client, "ada@example.com")
    old = login(client, "ada@example.com")
    client.post("/users/password-reset", json={"email": "ada@example.com"})
    client.post("/users/password-reset", json={"email": "ada@example.com"})
    first, second = (m for m in mails(app, "ada@example.com", "reset_password"))
    token = link_in(second).split("token=")[1]
    weak = confirm_reset(client, token, "password")
    assert weak.status_code == 422 and assert_problem(weak)["code"] == "weak_password"
    assert confirm_reset(client, token).status_code == 204  # still usable after the refusal
    assert client.get("/users/me", headers=bearer(old["access_token"])).status_code == 401
    refreshed = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}
    )
    assert refreshed.status_code == 400
    bad = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
    )
    assert bad.status_code == 400
    login(client, "ada@example.com", NEW_PASSWORD)
    # E8: the other link died with the old password, and this one is used.
    assert_invalid_token(
        confirm_reset(client, link_in(first).split("token=")[1], "yet another passphrase")
    )
    assert_invalid_token(confirm_reset(client, token, "yet another passphrase"))
    (notice,) = mails(app, "ada@example.com", "password_changed")
    assert "https://testserver/forgot-password" in notice.as_string()


def test_a_password_change_kills_reset_links(client: TestClient, app: FastAPI) -> None:
    register(client, "ada@example.com")
    client.post("/users/password-reset", json={"email": "ada@example.com"})
    token = last_token(app, "ada@example.com", "reset_password")
    changed = client.patch(
        "/users/me",
        json={"password": "changed by hand again", "current_password": PASSWORD},
        auth=("ada@example.com", PASSWORD),
    )
    assert changed.status_code == 200, changed.text
    assert_invalid_token(confirm_reset(client, token))
    login(client, "ada@example.com", "changed by hand again")


def test_parallel_confirms_exactly_one_wins(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    register(client, "ada@example.com")
    client.post("/users/password-reset", json={"email": "ada@example.com"})
    token = last_token(app, "ada@example.com", "reset_password")
    statuses: list[int] = []
    lock = threading.Lock()
    with running_server(settings) as base:
        barrier = threading.Barrier(8)

        def attempt(index: int) -> None:
            body = {"token": token, "password": f"parallel passphrase {index}"}
            with httpx.Client(base_url=base, timeout=60) as http:
                barrier.wait()
                response = http.post("/users/password-reset/confirm", json=body)
            with lock:
                statuses.append(response.status_code)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(statuses) == [204] + [400] * 7, statuses
    assert len(mails(app, "ada@example.com", "password_changed")) == 1


def test_unverified_accounts_cannot_sign_in_when_required(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(require_verified_email=True))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "ada@example.com")
        refused = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        assert "/users/verification" in refused.json()["error_description"]
        basic = client.get("/users/me", auth=("ada@example.com", PASSWORD))
        assert basic.status_code == 403
        assert assert_problem(basic)["code"] == "email_not_verified"
        # L7: a wrong password still gets the one answer every failure gets.
        wrong = client.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": "ada@example.com",
                "password": "wrong one!",
            },
        )
        assert "verif" not in wrong.json()["error_description"]
        confirm_verification(client, last_token(app, "ada@example.com", "verify_email"))
        login(client, "ada@example.com")
