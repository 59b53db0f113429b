"""/users/me/factors: an authenticator app set up over the API with codes pyotp
computes from the returned key (M1), recovery codes shown once (M2), and what a
factor change demands and ends (M3), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import bearer, register
from tests.support.callers import (
    assert_first_party_only,
    basic_headers,
    first_party_headers,
    third_party_token,
)
from tests.support.factor_api import enrol, events, fresh_token, mails, start
from tests.support.factors import now_code, verified, wrong_code
from tests.support.oauth_flow import EMAIL
from tests.support.problems import assert_problem

CODE_SHAPE = r"^[a-z2-7]{4}(-[a-z2-7]{4}){3}$"
CHANGES = (
    ("POST", "/users/me/factors/totp", None),
    ("POST", "/users/me/factors/totp/confirm", {"code": "123456"}),
    ("DELETE", "/users/me/factors/totp", None),
    ("POST", "/users/me/factors/recovery-codes", None),
)


@pytest.fixture
def ada(client: TestClient, app: FastAPI) -> dict[str, str]:
    """Ada, verified, with a first-party token from a login just now."""
    register(client, EMAIL)
    verified(app, EMAIL)
    return first_party_headers(client)


def test_m1_m3_the_whole_enrolment_over_the_api(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    listed = client.get("/users/me/factors", headers=ada)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "totp": {"enabled": False, "confirmed_at": None},
        "recovery_codes_left": 0,
        "passkeys": 0,
    }
    started = client.post("/users/me/factors/totp", headers=ada)
    assert started.status_code == 201, started.text
    assert started.headers["cache-control"] == "no-store"
    body = started.json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and "<?xml" not in body["qr_svg"]
    # Not active before a valid code (M1).
    assert client.get("/users/me/factors", headers=ada).json()["totp"]["enabled"] is False

    wrong = client.post(
        "/users/me/factors/totp/confirm", json={"code": wrong_code(body["secret"])}, headers=ada
    )
    assert wrong.status_code == 403 and assert_problem(wrong)["code"] == "invalid_code"
    confirmed = client.post(
        "/users/me/factors/totp/confirm", json={"code": now_code(body["secret"])}, headers=ada
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.headers["cache-control"] == "no-store"
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 == len(set(codes))

    assert all(re.match(CODE_SHAPE, code) for code in codes)

    # M3: every token of the user ended, the caller's own included; the password
    # alone no longer signs in (M4).
    assert client.get("/users/me", headers=ada).status_code == 401
    assert client.get("/users/me", headers=basic_headers()).json()["code"] == "mfa_required"
    after = fresh_token(app, ada)
    state = client.get("/users/me/factors", headers=after).json()
    assert state["totp"]["enabled"] is True and state["totp"]["confirmed_at"]
    assert state["recovery_codes_left"] == 10
    assert "factor_added" in mails(app, EMAIL)
    assert [e.event for e in events(app, "factor.added")] == ["factor.added"]
    assert [e.event for e in events(app, "factor.failed")] == ["factor.failed"]
    # Set up already: a second start is a conflict, not a silent replacement.
    again = client.post("/users/me/factors/totp", headers=after)
    assert again.status_code == 409, again.text


def test_m1_a_used_code_is_refused_again(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    """The code that confirmed the app cannot be used again (same step, M1): here
    as the second factor of an email change."""
    secret = str(start(client, ada)["secret"])
    code = now_code(secret)
    confirmed = client.post("/users/me/factors/totp/confirm", json={"code": code}, headers=ada)
    assert confirmed.status_code == 200, confirmed.text
    replay = client.post(
        "/users/me/email",
        json={
            "email": "new@example.com",
            "current_password": "correct horse battery staple",
            "code": code,
        },
        headers=fresh_token(app, ada),
    )
    assert replay.status_code == 403, replay.text
    assert replay.json()["code"] == "invalid_code"


def test_m2_codes_are_shown_once_and_regenerating_voids_them(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    _, first = enrol(client, ada)
    headers = fresh_token(app, ada)
    listed = client.get("/users/me/factors", headers=headers)
    assert not any(code in listed.text for code in first)
    renewed = client.post("/users/me/factors/recovery-codes", headers=headers)
    assert renewed.status_code == 200, renewed.text
    assert renewed.headers["cache-control"] == "no-store"
    second = renewed.json()["recovery_codes"]
    assert len(second) == 10 and not set(second) & set(first)
    assert "recovery_codes_renewed" in mails(app, EMAIL)
    # A voided code is no second factor any more.
    refused = client.post(
        "/users/me/email",
        json={
            "email": "new@example.com",
            "current_password": "correct horse battery staple",
            "code": first[0],
        },
        headers=headers,
    )
    assert refused.status_code == 403 and refused.json()["code"] == "invalid_code"


def test_m3_removing_the_app_ends_every_token_and_the_password_works_again(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    enrol(client, ada)
    headers = fresh_token(app, ada)
    # JWT iat counts whole seconds: a token stamped in the second of the revocation
    # mark is not older than it.
    time.sleep(1.1)
    removed = client.delete("/users/me/factors/totp", headers=headers)
    assert removed.status_code == 204, removed.text
    assert client.get("/users/me", headers=headers).status_code == 401
    assert client.get("/users/me", headers=basic_headers()).status_code == 200
    assert "factor_removed" in mails(app, EMAIL)
    assert client.delete("/users/me/factors/totp", headers=basic_headers()).status_code == 404
    nothing = client.post("/users/me/factors/recovery-codes", headers=basic_headers())
    assert nothing.status_code == 409, nothing.text


def test_m3_changes_need_a_recent_login(
    client: TestClient, app: FastAPI, ada: dict[str, str]
) -> None:
    """RFC 9470: a token from a login over five minutes old reads, and changes
    nothing; the refusal is the challenge with max_age."""
    old = fresh_token(app, ada, age=301)
    assert client.get("/users/me/factors", headers=old).status_code == 200
    for method, path, body in CHANGES:
        refused = client.request(method, path, json=body, headers=old)
        assert refused.status_code == 401, (path, refused.text)
        challenge = refused.headers["www-authenticate"]
        assert 'error="insufficient_user_authentication"' in challenge
        assert "max_age=300" in challenge
        assert assert_problem(refused)["code"] == "insufficient_user_authentication"


def test_m3_third_party_apps_never_touch_factors(with_app: TestClient) -> None:
    headers = bearer(
        third_party_token(with_app, "openid profile profile:write email offline_access")[
            "access_token"
        ]
    )
    assert_first_party_only(with_app.get("/users/me/factors", headers=headers))
    for method, path, body in CHANGES:
        assert_first_party_only(with_app.request(method, path, json=body, headers=headers))


def test_m3_an_unverified_account_cannot_enrol(client: TestClient) -> None:
    register(client, EMAIL)
    refused = client.post("/users/me/factors/totp", headers=first_party_headers(client))
    assert refused.status_code == 403, refused.text
    assert assert_problem(refused)["code"] == "email_not_verified"


def test_m1_confirm_without_a_started_setup_or_with_junk_is_refused(
    client: TestClient, ada: dict[str, str]
) -> None:
    none = client.post("/users/me/factors/totp/confirm", json={"code": "123456"}, headers=ada)
    assert none.status_code == 404, none.text
    start(client, ada)
    for junk in ({"code": ""}, {"code": "1" * 65}, {"code": 123456}, {"other": "x"}, {}):
        response = client.post("/users/me/factors/totp/confirm", json=junk, headers=ada)
        assert response.status_code == 422, (junk, response.text)
    letters = client.post("/users/me/factors/totp/confirm", json={"code": "abcdef"}, headers=ada)
    assert letters.status_code == 403 and letters.json()["code"] == "invalid_code"
