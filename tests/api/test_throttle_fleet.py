"""Two replicas (two apps on one database and one Redis) share their throttles:
login failures and attempts in flight (N1), the mail and sign-up limits (N3); and
with Redis down each counts on its own, answering 400/429, never 500 (N2)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.callers import first_party_headers
from tests.support.oauth_clients import EMAIL, password_form
from tests.support.redis import RedisServer
from userservice.app import create_app
from userservice.settings import Settings
from userservice.wiring import wired

Replicas = Callable[..., list[TestClient]]


@pytest.fixture
def replicas(make_settings: Callable[..., Settings], redis_url: str) -> Iterator[Replicas]:
    """`count` apps on the test's database and Redis, as replicas behind a balancer."""
    with ExitStack() as stack:

        def build(count: int = 2, **overrides: Any) -> list[TestClient]:
            # Generous: these are about sharing, not a busy machine's timeouts.
            values = {"redis_url": redis_url, "redis_timeout_seconds": 5, **overrides}
            return [
                stack.enter_context(
                    TestClient(create_app(make_settings(**values)), base_url="https://testserver")
                )
                for _ in range(count)
            ]

        yield build


WRONG = "not the password"


def _guess(client: TestClient, password: str = WRONG) -> int:
    return client.post("/oauth/token", data=password_form(password=password)).status_code


def test_n1_guesses_spread_over_replicas_hit_the_limit_as_on_one(replicas: Replicas) -> None:
    first, second = replicas(login_limit_per_account="3/minute")
    register(first, EMAIL)
    statuses = [_guess(client) for client in (first, second, first, second, first)]
    assert statuses == [400, 400, 400, 429, 429], statuses
    assert _guess(second, password=PASSWORD) == 429
    for client in (first, second):
        ready = client.get("/readyz").json()
        assert ready["counters"] == "redis", ready


def test_n1_guesses_sent_at_once_to_two_replicas_do_not_outrun_the_limit(
    replicas: Replicas,
) -> None:
    """Twelve wrong guesses at the same moment through each replica, a limit of 3:
    three are checked in all, the rest throttled, although none has failed when
    the others arrive."""
    first, second = replicas(login_limit_per_account="3/minute")
    register(first, EMAIL)
    start = threading.Barrier(24)

    def guess(index: int) -> int:
        start.wait(timeout=30)
        return _guess(first if index % 2 else second)

    with ThreadPoolExecutor(24) as pool:
        statuses = sorted(pool.map(guess, range(24)))
    assert statuses == [400] * 3 + [429] * 21, statuses


def test_n3_mail_and_sign_up_limits_are_shared_by_replicas(replicas: Replicas) -> None:
    first, second = replicas(mail_limit_per_ip="2/hour")
    for client in (first, second):
        response = client.post("/users/password-reset", json={"email": "x@example.com"})
        assert response.status_code == 202, response.text
    refused = second.post("/users", json={"email": "new@example.com", "password": "pw" * 8})
    assert refused.status_code == 429, refused.text
    assert first.post("/users/verification", json={"email": "x@example.com"}).status_code == 429


def test_n2_with_redis_down_each_replica_still_throttles_and_never_fails(
    replicas: Replicas, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.security")
    first, second = replicas(login_limit_per_account="3/minute", redis_timeout_seconds=1)
    register(first, EMAIL)
    redis_server.stop()
    try:
        took, statuses = [], []
        for client in (first, first, first, first, second, second, second, second):
            began = time.monotonic()
            statuses.append(_guess(client))
            took.append(time.monotonic() - began)
        # Each replica allows the limit on its own during the outage, never more.
        assert statuses == [400, 400, 400, 429] * 2, statuses
        assert max(took) < 1 + 2, took  # the timeout, plus a hash on a busy machine
        ready = first.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["counters"] == "process memory: Redis is not answering"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, [r.getMessage() for r in warnings]  # one per replica
    finally:
        redis_server.start()
    redis_server.flush()
    deadline = time.monotonic() + 20
    for client in (first, second):
        while client.get("/readyz").json()["counters"] != "redis":
            assert time.monotonic() < deadline, "Redis was never tried again"
            time.sleep(0.1)  # polling, with a deadline
    statuses = [_guess(client) for client in (second, first, second, first)]
    assert statuses == [400, 400, 400, 429], statuses  # shared again


def test_n1_guesses_at_the_current_password_are_shared_by_replicas(
    replicas: Replicas,
) -> None:
    """The synchronous check (PATCH /users/me runs in a worker thread) reaches Redis
    through the event loop: guesses through either replica fill one window."""
    first, second = replicas(login_limit_per_account="3/minute")
    register(first, EMAIL)
    headers = first_party_headers(first, EMAIL)
    change = {"password": "another long passphrase", "current_password": WRONG}
    answers = [
        client.patch("/users/me", json=change, headers=headers).status_code
        for client in (first, second, first, second)
    ]
    assert answers == [403, 403, 403, 429], answers


def test_n1_requests_on_new_event_loops_keep_counting_in_redis(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    """A TestClient without `with` runs each request on an event loop of its own: a
    redis-py client belongs to one loop, so each loop gets its own."""
    settings = make_settings(
        redis_url=redis_url, redis_timeout_seconds=5, login_limit_per_account="3/minute"
    )
    app = create_app(settings)
    register(TestClient(app, base_url="https://testserver"), EMAIL)
    statuses = [_guess(TestClient(app, base_url="https://testserver")) for _ in range(4)]
    assert statuses == [400, 400, 400, 429], statuses
    assert wired(app).counters.fell_back is False
