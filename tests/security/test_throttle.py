"""E4: the login throttle's windows hold attempts in flight, not only failures;
the same rules whether counters are kept in process memory or in Redis (N1)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.support.counters import run, store_url
from userservice.errors import Throttled
from userservice.security.counters import Counters, Hold, Refused, Window
from userservice.security.throttle import CEILING_FACTOR, LoginThrottle, LoginThrottled, Windows

__all__ = ["store_url"]

TIMEOUT = 5.0  # about the rules, not a busy machine's timeouts (N2)


def test_attempts_in_flight_fill_the_window_until_settled(store_url: str | None) -> None:
    counters = Counters(store_url, TIMEOUT)
    throttle = LoginThrottle("3/minute", "100/minute", counters)
    alice = Windows("alice", "10.0.0.1")

    async def scenario() -> None:
        holds = [await throttle.check(alice) for _ in range(3)]
        with pytest.raises(Throttled) as full:
            await throttle.check(alice)
        assert full.value.retry_after == 1  # only in flight: settled within a hash's time
        await throttle.released(holds[0])  # e.g. the database failed: not a failure
        holds[0] = await throttle.check(alice)
        for hold in holds:
            await throttle.failed(hold)
        with pytest.raises(Throttled) as failures:
            await throttle.check(alice)
        assert 1 < failures.value.retry_after <= 60  # until the oldest failure ages out
        await throttle.check(Windows("bob", "10.0.0.1"))  # per account; the IP has room

    run(counters, scenario)


def test_a_success_clears_the_account_and_frees_its_places(store_url: str | None) -> None:
    counters = Counters(store_url, TIMEOUT)
    throttle = LoginThrottle("2/minute", "100/minute", counters)
    alice = Windows("alice", "10.0.0.1")

    async def scenario() -> None:
        await throttle.failed(await throttle.check(alice))
        await throttle.succeeded(await throttle.check(alice))
        holds = [await throttle.check(alice) for _ in range(2)]
        for hold in holds:
            await throttle.released(hold)
        # Nothing is kept per account or IP once settled.
        for window in holds[0].windows:
            assert await holds[0].store.held(window, holds[0].at) == 0

    run(counters, scenario)


def test_the_per_ip_window_counts_attempts_in_flight_across_accounts(
    store_url: str | None,
) -> None:
    counters = Counters(store_url, TIMEOUT)
    throttle = LoginThrottle("100/minute", "2/minute", counters)

    async def scenario() -> None:
        await throttle.check(Windows("a", "10.0.0.9"))
        await throttle.check(Windows("b", "10.0.0.9"))
        with pytest.raises(Throttled):
            await throttle.check(Windows("c", "10.0.0.9"))
        await throttle.check(Windows("c", "10.0.0.10"))

    run(counters, scenario)


def test_a_ceiling_bounds_an_account_over_every_network(store_url: str | None) -> None:
    """S12: per-network windows cannot be multiplied without bound by an attacker
    holding many networks; the account's ceiling is CEILING_FACTOR times wider."""
    counters = Counters(store_url, TIMEOUT)
    throttle = LoginThrottle("3/minute", "1000/minute", counters)

    async def scenario() -> None:
        for network in range(CEILING_FACTOR):
            for _ in range(3):
                windows = Windows(
                    f"net:10.0.{network}.0/24 ada", f"10.0.{network}.1", ceiling="ada"
                )
                await throttle.failed(await throttle.check(windows))
        fresh_network = Windows("net:192.168.1.0/24 ada", "192.168.1.7", ceiling="ada")
        with pytest.raises(Throttled):
            await throttle.check(fresh_network)
        await throttle.check(Windows("net:192.168.1.0/24 bob", "192.168.1.7", ceiling="bob"))

    run(counters, scenario)


def test_a_window_without_ip_is_not_held_by_a_busy_address(store_url: str | None) -> None:
    """S12: a device's attempts are bounded by its own window, not by others'
    failures from the same (shared) address."""
    counters = Counters(store_url, TIMEOUT)
    throttle = LoginThrottle("3/minute", "2/minute", counters)

    async def scenario() -> None:
        for account in ("a", "b"):
            await throttle.failed(await throttle.check(Windows(account, "10.0.0.9")))
        with pytest.raises(Throttled):
            await throttle.check(Windows("c", "10.0.0.9"))
        await throttle.check(Windows("device:n", None))

    run(counters, scenario)


class _CountedAdmissions(Counters):
    """A real counter store (memory or Redis) that counts its admissions."""

    admissions = 0

    async def admit(self, windows: Sequence[Window]) -> Hold | Refused:
        self.admissions += 1
        return await super().admit(windows)


def test_a_refusal_names_its_limit_from_its_one_admission(store_url: str | None) -> None:
    """The metrics' label comes from the refused admission itself: no second
    admission (a round trip under a flood, and a place held for a moment that a
    concurrent sign-in could be refused for)."""
    counters = _CountedAdmissions(store_url, TIMEOUT)
    throttle = LoginThrottle("2/minute", "3/minute", counters)
    ada = Windows("ada", "10.0.0.1", ceiling="ada")

    async def scenario() -> None:
        for _ in range(2):
            await throttle.failed(await throttle.check(ada))
        asked = counters.admissions
        with pytest.raises(LoginThrottled) as account:
            await throttle.check(ada)  # the account's window is full, the address's not
        assert account.value.limit == "login_account"
        await throttle.failed(await throttle.check(Windows("bob", "10.0.0.1")))
        with pytest.raises(LoginThrottled) as address:
            await throttle.check(Windows("carol", "10.0.0.1"))  # the address's is full
        assert address.value.limit == "login_ip"
        with pytest.raises(LoginThrottled) as both:
            await throttle.check(ada)
        assert both.value.limit == "login_ip"  # the address's window was full too
        assert counters.admissions == asked + 4  # one per check, no probe
        with pytest.raises(LoginThrottled) as exempt:
            await throttle.check(Windows("ada", None, ceiling="ada"))  # no IP window
        assert exempt.value.limit == "login_account"

    run(counters, scenario)
