"""E4: the login throttle's windows hold attempts in flight, not only failures."""

from __future__ import annotations

import pytest

from userservice.errors import Throttled
from userservice.security.throttle import LoginThrottle


def test_attempts_in_flight_fill_the_window_until_settled() -> None:
    throttle = LoginThrottle("3/minute", "100/minute")
    for _ in range(3):
        throttle.check("alice", "10.0.0.1")
    with pytest.raises(Throttled) as full:
        throttle.check("alice", "10.0.0.1")
    assert full.value.retry_after == 1  # only in flight: settled within a hash's time
    throttle.released("alice", "10.0.0.1")  # e.g. the database failed: not a failure
    throttle.check("alice", "10.0.0.1")
    for _ in range(3):
        throttle.failed("alice", "10.0.0.1")
    with pytest.raises(Throttled) as failures:
        throttle.check("alice", "10.0.0.1")
    assert 1 < failures.value.retry_after <= 60  # until the oldest failure ages out
    throttle.check("bob", "10.0.0.1")  # per account; the IP still has room


def test_a_success_clears_the_account_and_frees_its_places() -> None:
    throttle = LoginThrottle("2/minute", "100/minute")
    throttle.check("alice", "10.0.0.1")
    throttle.failed("alice", "10.0.0.1")
    throttle.check("alice", "10.0.0.1")
    throttle.succeeded("alice", "10.0.0.1")
    for _ in range(2):
        throttle.check("alice", "10.0.0.1")
    throttle.released("alice", "10.0.0.1")
    throttle.released("alice", "10.0.0.1")
    assert not throttle._in_flight  # nothing kept per account or IP once settled


def test_the_per_ip_window_counts_attempts_in_flight_across_accounts() -> None:
    throttle = LoginThrottle("100/minute", "2/minute")
    throttle.check("a", "10.0.0.9")
    throttle.check("b", "10.0.0.9")
    with pytest.raises(Throttled):
        throttle.check("c", "10.0.0.9")
    throttle.check("c", "10.0.0.10")
