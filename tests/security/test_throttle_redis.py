"""N1: login throttles of different processes share their windows through Redis,
the attempts in flight included. Each LoginThrottle here has a Counters of its own,
as each worker or replica does."""

from __future__ import annotations

import threading

import anyio
import pytest

from tests.support.counters import run
from userservice.errors import Throttled
from userservice.security.counters import Counters, Hold
from userservice.security.throttle import LoginThrottle, Windows

ADA = Windows("net:10.0.0.0/24 ada", "10.0.0.1", ceiling="ada")


# Generous: these tests are about sharing, not about a busy machine's timeouts (N2).
TIMEOUT = 5.0


def _pair(redis_url: str, per_account: str = "3/minute") -> list[LoginThrottle]:
    return [
        LoginThrottle(per_account, "1000/minute", Counters(redis_url, TIMEOUT)) for _ in range(2)
    ]


def test_n1_failures_through_either_process_count_in_one_window(redis_url: str) -> None:
    first, second = _pair(redis_url)

    async def scenario() -> None:
        for throttle in (first, second, first):
            await throttle.failed(await throttle.check(ADA))
        for throttle in (first, second):
            with pytest.raises(Throttled) as refused:
                await throttle.check(ADA)
            assert 1 < refused.value.retry_after <= 60

    run(first._counters, scenario)


def test_n1_attempts_in_flight_through_either_process_fill_the_window(redis_url: str) -> None:
    first, second = _pair(redis_url)

    async def scenario() -> None:
        held = [await first.check(ADA), await second.check(ADA), await first.check(ADA)]
        with pytest.raises(Throttled) as refused:
            await second.check(ADA)
        assert refused.value.retry_after == 1
        await first.released(held[0])  # settled on the other process than it was taken
        await second.check(ADA)

    run(first._counters, scenario)


def test_n1_a_success_clears_only_its_own_window(redis_url: str) -> None:
    """S12 across processes: the owner's success on one network through one
    process leaves the guesses from another network, counted by another, in place."""
    first, second = _pair(redis_url)
    elsewhere = Windows("net:192.0.2.0/24 ada", "192.0.2.9", ceiling="ada")

    async def scenario() -> None:
        for _ in range(2):
            await first.failed(await first.check(ADA))
            await second.failed(await second.check(elsewhere))
        await second.succeeded(await second.check(ADA))
        for _ in range(3):  # the owner's network is clear again
            await first.failed(await first.check(ADA))
        await first.failed(await first.check(elsewhere))  # the third guess from there
        with pytest.raises(Throttled):
            await second.check(elsewhere)

    run(first._counters, scenario)


def test_n1_concurrent_attempts_through_two_processes_never_pass_the_limit(
    redis_url: str,
) -> None:
    """Two event loops in two threads, each with its own counters (as two
    processes), send 20 attempts each at the same moment at a limit of 5: at most 5
    are admitted in all, whoever sent them."""
    limit, each = 5, 20
    throttles = _pair(redis_url, f"{limit}/minute")
    start = threading.Barrier(2, timeout=10)
    admitted: list[int] = []

    def process(throttle: LoginThrottle) -> None:
        async def attempts() -> None:
            count = 0

            async def one() -> None:
                nonlocal count
                try:
                    await throttle.check(ADA)  # held until the end: never settled
                except Throttled:
                    return
                count += 1

            start.wait()
            async with anyio.create_task_group() as group:
                for _ in range(each):
                    group.start_soon(one)
            admitted.append(count)

        run(throttle._counters, attempts)

    threads = [threading.Thread(target=process, args=(t,)) for t in throttles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(admitted) == 2, "a process did not finish"
    assert sum(admitted) == limit, admitted


def test_n1_a_hold_taken_by_a_killed_process_ages_out(redis_url: str) -> None:
    killed = LoginThrottle(
        "1/minute", "1000/minute", Counters(redis_url, TIMEOUT, hold_seconds=0.5)
    )
    survivor = LoginThrottle(
        "1/minute", "1000/minute", Counters(redis_url, TIMEOUT, hold_seconds=0.5)
    )

    async def scenario() -> Hold:
        await killed.check(ADA)  # never settled: its process is gone
        with pytest.raises(Throttled):
            await survivor.check(ADA)
        deadline = anyio.current_time() + 5
        while True:
            try:
                return await survivor.check(ADA)
            except Throttled:
                assert anyio.current_time() < deadline, "the hold never aged out"
                await anyio.sleep(0.05)  # polling, with a deadline

    run(survivor._counters, scenario)
    run(killed._counters, _nothing)


async def _nothing() -> None:
    return None
