"""N2: when Redis does not answer, counting goes on in this process's memory (never
unlimited, never an error), each call bounded by the timeout; one WARNING when it
starts, one INFO when Redis answers again, and shared counting resumes."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator

import anyio
import pytest
from limits import parse

from tests.support.redis import RedisServer
from userservice.security.counters import FAILED, Counters, Hold, Refused, Window

TIMEOUT = 0.3
WINDOW = Window(parse("2/minute"), "test", "ada")


@pytest.fixture
def redis_down(redis_url: str, redis_server: RedisServer) -> Iterator[str]:
    """The URL of a Redis that has just stopped; started again afterwards."""
    redis_server.stop()
    try:
        yield redis_url
    finally:
        if redis_server.process is None:
            redis_server.start()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_n2_counting_goes_on_in_memory_while_redis_is_down(
    redis_down: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.security")
    counters = Counters(redis_down, TIMEOUT, retry_seconds=0.2)
    other_process = Counters(redis_down, TIMEOUT, retry_seconds=0.2)

    async def outage() -> None:
        answers = []
        for _ in range(3):
            began = time.monotonic()
            answers.append(await counters.admit([WINDOW]))
            assert time.monotonic() - began < TIMEOUT + 1
            await anyio.sleep(0.25)  # past the retry interval: Redis is tried again
        assert [isinstance(a, Hold) for a in answers] == [True, True, False]  # still limited
        assert await counters.state() == "process memory: Redis is not answering"

    anyio.run(outage)
    assert len(_warnings(caplog)) == 1, _warnings(caplog)  # once, not once per retry
    assert "memory" in _warnings(caplog)[0]

    redis_server.start()

    async def back() -> None:
        deadline = time.monotonic() + 10
        while await counters.state() != "redis":
            assert time.monotonic() < deadline, "Redis was never tried again"
            await anyio.sleep(0.05)  # polling, with a deadline
        # Shared again: one failure through each process fills the window of 2.
        for process in (counters, other_process):
            hold = await process.admit([WINDOW])
            assert isinstance(hold, Hold)
            await process.settle(hold, FAILED)
        assert isinstance(await counters.admit([WINDOW]), Refused)
        assert isinstance(await other_process.admit([WINDOW]), Refused)
        await counters.close()
        await other_process.close()

    anyio.run(back)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("again" in line for line in infos), infos


def test_n2_a_failure_settled_during_an_outage_is_counted_in_memory(
    redis_url: str, redis_server: RedisServer
) -> None:
    counters = Counters(redis_url, TIMEOUT, retry_seconds=60)
    window = Window(parse("1/minute"), "test", "bob")

    async def admitted() -> Hold:
        hold = await counters.admit([window])
        assert isinstance(hold, Hold)
        return hold

    hold = anyio.run(admitted)
    redis_server.stop()
    try:

        async def settled_during_outage() -> Refused | Hold:
            await counters.settle(hold, FAILED)  # Redis gone: counted here instead
            return await counters.admit([window])

        assert isinstance(anyio.run(settled_during_outage), Refused)
    finally:
        redis_server.start()


def test_n2_a_redis_that_hangs_costs_each_call_at_most_the_timeout(
    redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped with SIGSTOP, Redis accepts nothing and answers nothing: only the
    timeout ends the wait."""
    assert redis_server.process is not None
    pid = redis_server.process.pid
    counters = Counters(redis_url, TIMEOUT, retry_seconds=0.1)

    async def calls() -> list[float]:
        took = []
        for _ in range(3):
            began = time.monotonic()
            await counters.admit([WINDOW])
            took.append(time.monotonic() - began)
            await anyio.sleep(0.15)  # past the retry interval: each call tries Redis
        return took

    os.kill(pid, signal.SIGSTOP)
    try:
        took = anyio.run(calls)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert max(took) < TIMEOUT + 0.5, took
    assert max(took) >= TIMEOUT * 0.9, took  # it did wait for Redis, then gave up
    assert len(_warnings(caplog)) == 1


def test_n2_after_the_retry_moment_one_request_probes_redis_the_others_count_in_memory(
    redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Under load, every request arriving once the retry moment has passed would
    otherwise try the hanging Redis and each pay the timeout."""
    assert redis_server.process is not None
    pid = redis_server.process.pid
    retry = 0.5
    counters = Counters(redis_url, TIMEOUT, retry_seconds=retry)
    window = Window(parse("1000/minute"), "test", "probe")

    async def one() -> float:
        began = time.monotonic()
        await counters.admit([window])
        return time.monotonic() - began

    async def concurrent() -> list[float]:
        took = [await one()]  # Redis fails to answer: counting moves to memory
        await anyio.sleep(retry + 0.1)  # past the retry moment (a span of time, not a sync)
        results: list[float] = []

        async def collect() -> None:
            results.append(await one())

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(collect)
        return took + results

    os.kill(pid, signal.SIGSTOP)
    try:
        took = anyio.run(concurrent)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took[0] >= TIMEOUT * 0.9, took
    waited = [t for t in took[1:] if t >= TIMEOUT * 0.9]
    assert len(waited) == 1, took  # the probe alone waits for Redis
    assert len(_warnings(caplog)) == 1
