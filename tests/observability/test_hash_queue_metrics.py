"""The password hashing metrics with a saturated pool for real (one hashing thread,
argon2 parameters that make a verify take about a second): the queue time a hash
reports is the time it waited for the thread, and a sign-in that gives up waiting
(503) counts as throttled by the `attempts` limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.support.accounts import PASSWORD
from tests.support.event_loop import run
from tests.support.metrics import value
from userservice.app import build_account_service
from userservice.db.backend import Database
from userservice.errors import ServiceUnavailable
from userservice.observability.prometheus import PrometheusMetrics
from userservice.security.passwords import PasswordHasher
from userservice.services.accounts import AccountService
from userservice.settings import Settings

SLOW = {"argon2_memory_kib": 65536, "argon2_time_cost": 20, "max_concurrent_hashes": 1}


def test_the_queue_time_is_the_wait_for_a_hashing_thread() -> None:
    waits: list[float] = []
    hasher = PasswordHasher(65536, 20, 1, 1, on_wait=waits.append)
    stored = hasher.hash(PASSWORD)
    assert len(waits) == 1 and waits[0] < 0.5  # the pool was idle

    async def two_at_once() -> tuple[float, float]:
        began = time.monotonic()
        first = asyncio.ensure_future(hasher.verify_async(PASSWORD, stored))
        await asyncio.sleep(0)
        await hasher.verify_async(PASSWORD, stored)
        first_done = time.monotonic() - began
        await first
        return first_done, time.monotonic() - began

    try:
        _, both = asyncio.run(two_at_once())
    finally:
        hasher.close()
    first_wait, second_wait = waits[1:]
    assert first_wait < 0.5
    # The second waited for the first verify, which is about half of both.
    assert both * 0.3 < second_wait < both


def test_a_sign_in_that_gives_up_waiting_is_counted_throttled_by_attempts(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    metrics = PrometheusMetrics()
    settings = make_settings(**SLOW)
    built = build_account_service(settings, database, metrics=metrics)
    built.register("ada@example.com", PASSWORD, "Ada")
    bounded = AccountService(
        database,
        built.hasher,
        built.throttle,
        built.devices,
        registration_open=True,
        attempt_seconds=0.3,
        metrics=metrics,
    )

    async def scenario() -> None:
        blocker = asyncio.ensure_future(
            built.authenticate("ada@example.com", PASSWORD, "192.0.2.1")
        )
        await asyncio.sleep(0.05)
        with pytest.raises(ServiceUnavailable):
            await bounded.authenticate("ada@example.com", PASSWORD, "192.0.2.2")
        await blocker

    try:
        run(database, scenario)
    finally:
        built.hasher.close()
    text = metrics.render()[0].decode()
    assert value(text, "userservice_throttled_total", limit="attempts") == 1
    assert value(text, "userservice_logins_total", outcome="throttled") == 1
    assert value(text, "userservice_logins_total", outcome="success") == 1
    # The registration's hash and the blocker's waited; the one that gave up was
    # taken off the queue before it started, so it never reported a wait.
    assert value(text, "userservice_password_hash_queue_seconds_count") == 2
