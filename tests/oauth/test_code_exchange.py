"""Redeeming authorization codes at POST /oauth/token: PKCE verifiers, replay,
concurrency, client and redirect binding, expiry (B3-B8), on SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.support.accounts import PASSWORD, bearer, login
from tests.support.oauth_flow import (
    EMAIL,
    REDIRECT,
    SECRET,
    add_app,
    assert_token_error,
    authorize_url,
    challenge_of,
    get,
    obtain_code,
    query,
    redeem,
    signed_in,
)
from tests.support.server import running_server
from userservice.db.models import AuthorizationCode, User
from userservice.oauth.server import CODE_TTL
from userservice.security.secrets import digest
from userservice.settings import Settings

OTHER_REDIRECT = "https://app.example/other"


def _engine(client: TestClient) -> Engine:
    return cast(Engine, cast(FastAPI, client.app).state.services.accounts.db.engine)


def _code_row(client: TestClient, code: str) -> AuthorizationCode:
    with Session(_engine(client), expire_on_commit=False) as session:
        row = session.scalars(
            select(AuthorizationCode).where(AuthorizationCode.digest == digest(code))
        ).one()
    return row


@pytest.fixture
def session_client(client: TestClient) -> TestClient:
    add_app(client, redirect_uris=[REDIRECT, OTHER_REDIRECT], first_party=True)
    return signed_in(client)


def test_correct_verifier_redeems_the_code(session_client: TestClient) -> None:
    code, verifier = obtain_code(session_client)
    response = redeem(session_client, code, verifier)
    assert response.status_code == 200, response.text
    assert {"access_token", "id_token"} <= set(response.json())
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("length", [43, 128])
def test_b3_verifier_length_bounds_are_accepted(session_client: TestClient, length: int) -> None:
    verifier = (secrets.token_urlsafe(96) + "-._~")[-length:]
    back = get(session_client, authorize_url(challenge=challenge_of(verifier)))
    code = query(back.headers["location"])["code"]
    assert redeem(session_client, code, verifier).status_code == 200


@pytest.mark.parametrize(
    ("verifier", "errors"),
    [
        (None, ("invalid_request",)),
        ("", ("invalid_request",)),
        ("a" * 42, ("invalid_request", "invalid_grant")),
        ("a" * 129, ("invalid_request", "invalid_grant")),
        ("a" * 42 + "+", ("invalid_request", "invalid_grant")),
        ("a" * 42 + "/", ("invalid_request", "invalid_grant")),
        ("a" * 42 + "=", ("invalid_request", "invalid_grant")),
        ("a" * 42 + " ", ("invalid_request", "invalid_grant")),
        ("a" * 42 + "\u00e9", ("invalid_request", "invalid_grant")),
        ("wrong" + "a" * 50, ("invalid_grant",)),
    ],
)
def test_b3_missing_wrong_or_malformed_verifier(
    session_client: TestClient, verifier: str | None, errors: tuple[str, ...]
) -> None:
    code, _right = obtain_code(session_client)
    assert_token_error(redeem(session_client, code, verifier), *errors)


def test_b3_duplicated_verifier_parameter(session_client: TestClient) -> None:
    code, verifier = obtain_code(session_client)
    body = httpx.QueryParams(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", "photo-app"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("code_verifier", "x" * 50),
        ]
    )
    response = session_client.post(
        "/oauth/token",
        content=str(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_token_error(response, "invalid_request")


@pytest.mark.parametrize("verifier", ["v" * 60, None])
def test_b4_code_without_challenge_never_redeems(
    session_client: TestClient, verifier: str | None
) -> None:
    # B4: /authorize always requires an S256 challenge (see test_b1/test_b2), so a
    # code without one cannot be obtained through the API; a row without one is
    # planted directly to check the token endpoint's own refusal.
    _code, _verifier = obtain_code(session_client)  # a real row to copy the user from
    user_id: uuid.UUID = _code_row(session_client, _code).user_id
    planted = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    with Session(_engine(session_client)) as session, session.begin():
        session.add(
            AuthorizationCode(
                digest=digest(planted),
                client_id="photo-app",
                user_id=user_id,
                redirect_uri=REDIRECT,
                scope="openid",
                nonce=None,
                code_challenge="",
                code_challenge_method="",
                auth_time=int(now.timestamp()),
                created_at=now,
                expires_at=now + dt.timedelta(minutes=5),
            )
        )
    assert_token_error(redeem(session_client, planted, verifier), "invalid_request")


@pytest.mark.parametrize("confidential", [False, True])
def test_b5_second_redemption_fails_and_revokes_the_first_tokens(
    client: TestClient, confidential: bool
) -> None:
    add_app(client, confidential=confidential)
    signed_in(client)
    secret = SECRET if confidential else None
    code, verifier = obtain_code(client, scope="openid profile offline_access")
    first = redeem(client, code, verifier, secret=secret)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 200

    assert_token_error(redeem(client, code, verifier, secret=secret), "invalid_grant")

    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    if confidential:
        refreshed = client.post("/oauth/token", data=form, auth=("photo-app", SECRET))
    else:
        refreshed = client.post("/oauth/token", data={**form, "client_id": "photo-app"})
    assert_token_error(refreshed, "invalid_grant")


def test_b6_parallel_redemptions_exactly_one_wins(
    session_client: TestClient, settings: Settings
) -> None:
    code, verifier = obtain_code(session_client)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    with running_server(settings) as base:
        barrier = threading.Barrier(20)

        def attempt() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                barrier.wait()
                response = redeem(http, code, verifier)
            with lock:
                statuses.append(response.status_code)
                if response.status_code != 200:
                    errors.append(response.json().get("error", ""))

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(statuses) == 20
    assert statuses.count(200) == 1, statuses
    assert all(s < 500 for s in statuses), statuses
    assert set(errors) == {"invalid_grant"}, errors


def test_b7_code_of_another_client_is_invalid_grant(session_client: TestClient) -> None:
    add_app(session_client, "other-app", first_party=True)
    code, verifier = obtain_code(session_client)
    assert_token_error(redeem(session_client, code, verifier, "other-app"), "invalid_grant")
    add_app(session_client, "conf-app", confidential=True, first_party=True)
    code, verifier = obtain_code(session_client)
    stolen = redeem(session_client, code, verifier, "conf-app", secret=SECRET)
    assert_token_error(stolen, "invalid_grant")


@pytest.mark.parametrize("sent", [OTHER_REDIRECT, REDIRECT + "/", None])
def test_b7_code_with_another_redirect_uri_is_invalid_grant(
    session_client: TestClient, sent: str | None
) -> None:
    code, verifier = obtain_code(session_client)
    assert_token_error(redeem(session_client, code, verifier, redirect_uri=sent), "invalid_grant")


def test_b8_expired_code_is_invalid_grant(session_client: TestClient) -> None:
    code, verifier = obtain_code(session_client)
    row = _code_row(session_client, code)
    assert dt.timedelta(0) < row.expires_at - row.created_at <= dt.timedelta(minutes=10)
    assert dt.timedelta(minutes=10) >= CODE_TTL
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with Session(_engine(session_client)) as session, session.begin():
        session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.digest == digest(code))
            .values(expires_at=past)
        )
    assert_token_error(redeem(session_client, code, verifier), "invalid_grant")


def test_b8_codes_carry_at_least_128_bits(session_client: TestClient) -> None:
    codes = [obtain_code(session_client)[0] for _ in range(5)]
    assert len(set(codes)) == 5
    for code in codes:
        # Authlib draws codes from a CSPRNG (random.SystemRandom) over [A-Za-z0-9].
        assert re.fullmatch(r"[A-Za-z0-9]+", code), code
        assert len(code) * math.log2(62) >= 128, code
    # Only the digest is stored, never the code itself.
    row = _code_row(session_client, codes[0])
    assert row.digest == digest(codes[0]) and codes[0] not in row.digest


def _sign_out_everywhere(client: TestClient) -> None:
    token = login(client, EMAIL)["access_token"]
    ended = client.delete("/users/me/sessions", headers=bearer(token))
    assert ended.status_code == 204, ended.text


def _change_password(client: TestClient) -> None:
    changed = client.patch(
        "/users/me",
        json={"password": "a new horse battery staple", "current_password": PASSWORD},
        auth=(EMAIL, PASSWORD),
    )
    assert changed.status_code == 200, changed.text


@pytest.mark.parametrize("revoke", [_sign_out_everywhere, _change_password])
def test_l23_e7_a_code_kept_across_a_revocation_is_invalid_grant(
    session_client: TestClient, revoke: Callable[[TestClient], None]
) -> None:
    """L23, E7: a code obtained before sign-out-everywhere or a password change
    buys nothing after it, however early within its life it is redeemed."""
    code, verifier = obtain_code(session_client, scope="openid offline_access")
    revoke(session_client)
    assert_token_error(redeem(session_client, code, verifier), "invalid_grant")


def test_l23_a_code_from_before_the_revocation_mark_is_refused_at_redemption(
    session_client: TestClient,
) -> None:
    """L23: the redemption itself refuses a code whose sign-in came before the
    user's revocation mark, even if the code row survived."""
    code, verifier = obtain_code(session_client)
    row = _code_row(session_client, code)
    with Session(_engine(session_client)) as session, session.begin():
        session.execute(
            update(User).where(User.id == row.user_id).values(tokens_valid_after=row.auth_time + 1)
        )
    assert_token_error(redeem(session_client, code, verifier), "invalid_grant")
