"""The counter store's contract (security/counters.py), the same on process memory
and on Redis: admission is all-or-nothing over an attempt's windows, holds are
given back and never taken below zero, a killed attempt's hold ages out (N1), and
the state is `limits`' own."""

from __future__ import annotations

import time

import anyio
import pytest
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from tests.support.counters import run, store_url
from userservice.security.counter_stores import limits_uri
from userservice.security.counters import (
    FAILED,
    RELEASED,
    SUCCEEDED,
    Counters,
    Hold,
    Refused,
    Window,
)

__all__ = ["store_url"]

THREE = parse("3/minute")
TIMEOUT = 5.0  # about the contract, not a busy machine's timeouts (N2)


def _window(name: str, limit: str = "2/minute") -> Window:
    return Window(parse(limit), "test", name)


def test_admission_is_all_or_nothing_over_the_windows(store_url: str | None) -> None:
    counters = Counters(store_url, TIMEOUT)
    own, shared = _window("own", "5/minute"), _window("shared", "1/minute")

    async def scenario() -> None:
        first = await counters.admit([own, shared])
        assert isinstance(first, Hold)
        refused = await counters.admit([own, shared])
        # Full only with a hold (settled within a hash's time); the shared window
        # is the one full, and the admission says so itself.
        assert refused == Refused(1.0, (1,))
        assert await first.store.held(own, time.time()) == 1  # the refusal took no place
        await counters.settle(first, RELEASED)
        assert await first.store.held(own, time.time()) == 0

    run(counters, scenario)


def test_failures_fill_a_window_and_a_success_empties_only_the_first(
    store_url: str | None,
) -> None:
    counters = Counters(store_url, TIMEOUT)
    own, ip = _window("own"), _window("ip", "3/minute")

    async def scenario() -> None:
        for _ in range(2):
            hold = await counters.admit([own, ip])
            assert isinstance(hold, Hold)
            await counters.settle(hold, FAILED)
        refused = await counters.admit([own, ip])
        assert isinstance(refused, Refused)
        assert 1 < refused.wait <= 60  # until the oldest ages out
        assert refused.full == (0,)  # the address's window still has room
        other = await counters.admit([_window("other"), ip])
        assert isinstance(other, Hold)
        await counters.settle(other, SUCCEEDED)  # empties "other", not the address's
        assert isinstance(await counters.admit([_window("third"), ip]), Hold)
        assert await counters.admit([_window("fourth"), ip]) == Refused(1.0, (1,))

    run(counters, scenario)


def test_giving_a_hold_back_twice_makes_no_room(store_url: str | None) -> None:
    counters = Counters(store_url, TIMEOUT)
    window = _window("w")

    async def scenario() -> None:
        hold = await counters.admit([window])
        assert isinstance(hold, Hold)
        await counters.settle(hold, RELEASED)
        await counters.settle(hold, RELEASED)  # a bug or a retry: never below zero
        assert await hold.store.held(window, time.time()) == 0
        holds = [await counters.admit([window]) for _ in range(3)]
        assert [isinstance(hold, Hold) for hold in holds] == [True, True, False]

    run(counters, scenario)


def test_a_killed_attempts_hold_ages_out(store_url: str | None) -> None:
    """N1: a process killed between admission and settlement leaves holds that stop
    counting within twice the hold time (here 0.5 s), not forever."""
    counters = Counters(store_url, TIMEOUT, hold_seconds=0.5)
    window = _window("w")

    async def scenario() -> None:
        for _ in range(2):
            assert isinstance(await counters.admit([window]), Hold)  # never settled
        assert isinstance(await counters.admit([window]), Refused)
        deadline = time.monotonic() + 5
        while not isinstance(await counters.admit([window]), Hold):
            assert time.monotonic() < deadline, "the holds never aged out"
            await _pause()

    run(counters, scenario)


def test_a_full_window_counts_an_event_only_when_it_has_room(store_url: str | None) -> None:
    counters = Counters(store_url, TIMEOUT)
    window = _window("mail", "2/hour")

    async def scenario() -> None:
        assert [await counters.hit(window) for _ in range(2)] == [0.0, 0.0]
        wait = await counters.hit(window)
        assert 3500 < wait <= 3600

    run(counters, scenario)


def test_counts_on_redis_are_limits_own_windows(redis_url: str) -> None:
    """The failures are limits' moving window: limits' own strategy reads them."""
    counters = Counters(redis_url, TIMEOUT)
    window = Window(THREE, "login", "bucket:ada")

    async def scenario() -> int:
        for _ in range(2):
            hold = await counters.admit([window])
            assert isinstance(hold, Hold)
            await counters.settle(hold, FAILED)
        limiter = MovingWindowRateLimiter(
            RedisStorage(limits_uri(redis_url), implementation="redispy")
        )
        stats = await limiter.get_window_stats(THREE, "login", "bucket:ada")
        return int(stats.remaining)

    assert run(counters, scenario) == 1


async def _pause() -> None:
    await anyio.sleep(0.05)  # polling a condition, with a deadline above


@pytest.mark.parametrize("outcome", [FAILED, SUCCEEDED, RELEASED])
def test_every_outcome_gives_the_hold_back(store_url: str | None, outcome: str) -> None:
    counters = Counters(store_url, TIMEOUT)
    window = _window("w", "5/minute")

    async def scenario() -> None:
        hold = await counters.admit([window])
        assert isinstance(hold, Hold)
        await counters.settle(hold, outcome)
        assert await hold.store.held(window, time.time()) == 0

    run(counters, scenario)


def test_blocking_calls_count_in_the_same_windows(store_url: str | None) -> None:
    """A synchronous service in a worker thread, and a script with no event loop,
    count where the event loop's coroutines do."""
    counters = Counters(store_url, TIMEOUT)
    window = _window("sync")

    async def from_a_worker_thread() -> None:
        hold = await anyio.to_thread.run_sync(counters.admit_blocking, [window])
        assert isinstance(hold, Hold)
        await anyio.to_thread.run_sync(counters.settle_blocking, hold, FAILED)
        assert await anyio.to_thread.run_sync(counters.hit_blocking, _window("mail")) == 0.0

    run(counters, from_a_worker_thread)
    hold = counters.admit_blocking([window])  # no event loop in this thread
    assert isinstance(hold, Hold)
    counters.settle_blocking(hold, FAILED)
    assert isinstance(counters.admit_blocking([window]), Refused)
