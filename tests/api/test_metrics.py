"""`GET /metrics` on the service port (O1) and what the scrape counts: logins by
outcome, tokens by grant, refresh reuse, throttling by limit, requests by route
template (O2). In-process application, real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.metrics import TOKEN, total, value
from tests.support.oauth_clients import (
    SECRET,
    add_service_client,
    basic_auth,
    password_form,
    refresh,
    set_user,
)
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.settings import Settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metered(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(metrics_token=TOKEN, login_limit_per_account="3/minute")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def test_o1_metrics_are_404_on_the_service_port_without_a_token(client: TestClient) -> None:
    for headers in ({}, AUTH):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        # The answer of any unknown path: nothing tells that metrics exist.
        unknown = client.get("/no-such-page", headers=headers)
        assert response.json() == unknown.json()
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN[:-1]}",  # a prefix of the token
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer {TOKEN}".encode() + b"\xe9",  # not ASCII: refused, never a 500
    ],
)
def test_o1_anything_but_the_bearer_token_is_refused(
    metered: TestClient, authorization: str | bytes | None
) -> None:
    if isinstance(authorization, str):
        authorization = authorization.encode()
    headers = {} if authorization is None else {b"Authorization": authorization}
    response = metered.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["cache-control"] == "no-store"
    assert "userservice_" not in response.text


def test_o1_the_token_reads_the_metrics_uncached(metered: TestClient) -> None:
    response = metered.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "# TYPE userservice_logins_total counter" in response.text
    assert "# TYPE userservice_http_request_duration_seconds histogram" in response.text


def _password_grant(client: TestClient, email: str, password: str) -> int:
    return client.post("/oauth/token", data=password_form(email, password)).status_code


def test_logins_tokens_and_reuse_are_counted_exactly(metered: TestClient) -> None:
    app = metered.app
    register(metered, "ada@example.com")
    register(metered, "bob@example.com")
    register(metered, "eve@example.com")
    for _ in range(2):
        assert _password_grant(metered, "ada@example.com", "wrong password!") == 400
    tokens = login(metered, "ada@example.com")
    login(metered, "ada@example.com")
    # Bob's limit is 3 per minute: the 4th and 5th guesses are throttled.
    statuses = [_password_grant(metered, "bob@example.com", "guess!!!!") for _ in range(5)]
    assert statuses == [400, 400, 400, 429, 429]
    assert _password_grant(metered, "nobody@example.com", PASSWORD) == 400
    set_user(app, "eve@example.com", is_active=False)  # type: ignore[arg-type]
    assert _password_grant(metered, "eve@example.com", PASSWORD) == 400

    add_service_client(app, scope="users:read")  # type: ignore[arg-type]
    response = metered.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "users:read"},
        headers=basic_auth("reporting", SECRET),
    )
    assert response.status_code == 200, response.text
    assert refresh(metered, tokens["refresh_token"]).status_code == 200
    replayed = refresh(metered, tokens["refresh_token"])
    assert replayed.status_code == 400
    # A refused grant issues nothing and counts nothing.
    assert refresh(metered, "not-a-token").status_code == 400

    text = scrape(metered)
    assert value(text, "userservice_logins_total", outcome="success") == 2
    assert value(text, "userservice_logins_total", outcome="failure") == 2 + 3 + 1
    assert value(text, "userservice_logins_total", outcome="throttled") == 2
    assert value(text, "userservice_logins_total", outcome="refused") == 1
    assert value(text, "userservice_tokens_issued_total", grant="password") == 2
    assert value(text, "userservice_tokens_issued_total", grant="client_credentials") == 1
    assert value(text, "userservice_tokens_issued_total", grant="refresh_token") == 1
    assert value(text, "userservice_tokens_issued_total", grant="authorization_code") == 0
    assert value(text, "userservice_refresh_token_reuse_total") == 1
    assert value(text, "userservice_throttled_total", limit="login_account") == 2
    assert value(text, "userservice_throttled_total", limit="login_ip") == 0
    # Every password check waited for a hashing thread, and was timed.
    # 3 registrations, each login not throttled, and the unknown account's dummy
    # hash, made once per process before its first use.
    hashes = 3 + 2 + 2 + 3 + (1 + 1) + 1
    assert value(text, "userservice_password_hash_queue_seconds_count") == hashes


def test_throttling_is_counted_by_limit(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        metrics_token=TOKEN,
        login_limit_per_ip="2/minute",
        login_limit_per_account="3/minute",
        mail_limit_per_ip="2/minute",
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "ada@example.com")
        register(client, "bob@example.com")
        refused = client.post("/users", json={"email": "c@example.com", "password": PASSWORD})
        assert refused.status_code == 429
        token = login(client, "ada@example.com")["access_token"]  # a success counts nowhere
        # Two accounts, one address: the address's window (2) fills first.
        for email in ("ada@example.com", "bob@example.com"):
            assert _password_grant(client, email, "guess!!!!") == 400
        assert _password_grant(client, "ada@example.com", "guess!!!!") == 429
        # The current password on a change: a window of its own (3 per minute).
        changes = {"password": "a brand new passphrase", "current_password": "not the one!"}
        statuses = [
            client.patch("/users/me", json=changes, headers=bearer(token)).status_code
            for _ in range(4)
        ]
        assert statuses == [403, 403, 403, 429]
        text = scrape(client)
    assert value(text, "userservice_throttled_total", limit="mail") == 1
    assert value(text, "userservice_throttled_total", limit="login_ip") == 1
    assert value(text, "userservice_throttled_total", limit="login_account") == 0
    assert value(text, "userservice_throttled_total", limit="current_password") == 1
    assert value(text, "userservice_logins_total", outcome="throttled") == 1


def test_o2_labels_carry_route_templates_never_raw_paths(metered: TestClient) -> None:
    user_ids = [str(uuid.uuid4()) for _ in range(3)]
    for user_id in user_ids:
        assert metered.get(f"/users/{user_id}").status_code == 401
    strays = [f"/nope/{uuid.uuid4().hex}" for _ in range(50)]
    for path in strays:
        assert metered.get(path, headers={"User-Agent": "probe"}).status_code == 404
    # A method no route knows: one label for all of them, never the client's token.
    assert metered.request("BREW", "/users/me").status_code in (400, 405)
    text = scrape(metered)
    assert "BREW" not in text
    assert total(text, "userservice_http_request_duration_seconds_count", method="other") == 1
    assert (
        value(
            text,
            "userservice_http_request_duration_seconds_count",
            method="GET",
            route="/users/{user_id}",
            status="401",
        )
        == 3
    )
    assert (
        value(
            text,
            "userservice_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 50
    )
    for raw in (*user_ids, *(path.rsplit("/", 1)[1] for path in strays), "/nope", "probe"):
        assert raw not in text
    assert total(text, "userservice_http_request_duration_seconds_count") >= 53


def test_pool_gauges_follow_checkouts(metered: TestClient, backend: str) -> None:
    engine = engine_of(metered.app)  # type: ignore[arg-type]
    # PostgreSQL: pool_size 16 plus half as many for bursts, and the hot-path
    # reader's 8 (db/postgres/async_reads.py); SQLite: as many again.
    limit = 16 + 8 + 8 if backend == "postgresql" else 16 + 16
    assert value(scrape(metered), "userservice_db_pool_connections_limit") == limit
    # The mail sender's own reads (on the app's loop) may hold one for a moment.
    assert _in_use_becomes(metered, 0)
    with engine.connect(), engine.connect():
        assert _in_use_becomes(metered, 2)
    assert _in_use_becomes(metered, 0)


def _in_use_becomes(client: TestClient, expected: int) -> bool:
    deadline = time.monotonic() + 5
    while value(scrape(client), "userservice_db_pool_connections_in_use") != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_outbox_gauges_show_mail_no_sender_has_sent(
    make_settings: Callable[..., Settings],
) -> None:
    # Without its lifespan the application runs no mail sender: the sign-ups'
    # verification mails wait in the outbox.
    client = TestClient(
        create_app(make_settings(metrics_token=TOKEN)), base_url="https://testserver"
    )
    text = scrape(client)
    assert value(text, "userservice_mail_outbox_messages") == 0
    assert value(text, "userservice_mail_outbox_oldest_age_seconds") == 0
    register(client, "ada@example.com")
    time.sleep(1.1)
    register(client, "bob@example.com")
    text = scrape(client)
    assert value(text, "userservice_mail_outbox_messages") == 2
    assert 1.0 <= value(text, "userservice_mail_outbox_oldest_age_seconds") < 60
    client.close()
