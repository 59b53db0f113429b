"""E4: the login throttle's windows hold attempts in flight, not only failures."""

from __future__ import annotations

import pytest

from userservice.errors import Throttled
from userservice.security.throttle import CEILING_FACTOR, LoginThrottle, Windows


def test_attempts_in_flight_fill_the_window_until_settled() -> None:
    throttle = LoginThrottle("3/minute", "100/minute")
    for _ in range(3):
        throttle.check(Windows("alice", "10.0.0.1"))
    with pytest.raises(Throttled) as full:
        throttle.check(Windows("alice", "10.0.0.1"))
    assert full.value.retry_after == 1  # only in flight: settled within a hash's time
    throttle.released(Windows("alice", "10.0.0.1"))  # e.g. the database failed: not a failure
    throttle.check(Windows("alice", "10.0.0.1"))
    for _ in range(3):
        throttle.failed(Windows("alice", "10.0.0.1"))
    with pytest.raises(Throttled) as failures:
        throttle.check(Windows("alice", "10.0.0.1"))
    assert 1 < failures.value.retry_after <= 60  # until the oldest failure ages out
    throttle.check(Windows("bob", "10.0.0.1"))  # per account; the IP still has room


def test_a_success_clears_the_account_and_frees_its_places() -> None:
    throttle = LoginThrottle("2/minute", "100/minute")
    throttle.check(Windows("alice", "10.0.0.1"))
    throttle.failed(Windows("alice", "10.0.0.1"))
    throttle.check(Windows("alice", "10.0.0.1"))
    throttle.succeeded(Windows("alice", "10.0.0.1"))
    for _ in range(2):
        throttle.check(Windows("alice", "10.0.0.1"))
    throttle.released(Windows("alice", "10.0.0.1"))
    throttle.released(Windows("alice", "10.0.0.1"))
    assert not throttle._in_flight  # nothing kept per account or IP once settled


def test_the_per_ip_window_counts_attempts_in_flight_across_accounts() -> None:
    throttle = LoginThrottle("100/minute", "2/minute")
    throttle.check(Windows("a", "10.0.0.9"))
    throttle.check(Windows("b", "10.0.0.9"))
    with pytest.raises(Throttled):
        throttle.check(Windows("c", "10.0.0.9"))
    throttle.check(Windows("c", "10.0.0.10"))


def test_a_ceiling_bounds_an_account_over_every_network() -> None:
    """S12: per-network windows cannot be multiplied without bound by an attacker
    holding many networks; the account's ceiling is CEILING_FACTOR times wider."""
    throttle = LoginThrottle("3/minute", "1000/minute")
    for network in range(CEILING_FACTOR):
        for _ in range(3):
            windows = Windows(f"net:10.0.{network}.0/24 ada", f"10.0.{network}.1", ceiling="ada")
            throttle.check(windows)
            throttle.failed(windows)
    fresh_network = Windows("net:192.168.1.0/24 ada", "192.168.1.7", ceiling="ada")
    with pytest.raises(Throttled):
        throttle.check(fresh_network)
    throttle.check(Windows("net:192.168.1.0/24 bob", "192.168.1.7", ceiling="bob"))


def test_a_window_without_ip_is_not_held_by_a_busy_address() -> None:
    """S12: a device's attempts are bounded by its own window, not by others'
    failures from the same (shared) address."""
    throttle = LoginThrottle("3/minute", "2/minute")
    for account in ("a", "b"):
        throttle.check(Windows(account, "10.0.0.9"))
        throttle.failed(Windows(account, "10.0.0.9"))
    with pytest.raises(Throttled):
        throttle.check(Windows("c", "10.0.0.9"))
    throttle.check(Windows("device:n", None))
