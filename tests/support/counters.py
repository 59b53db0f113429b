"""Counter stores for the throttle tests: process memory, and the test Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import pytest

from userservice.security.counters import Counters

T = TypeVar("T")


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None (process memory), or the URL of an emptied test Redis."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("redis_url"))


def run(counters: Counters, work: Callable[[], Awaitable[T]]) -> T:
    """`work` on an event loop of its own, the counters' client closed with it; on
    Redis, it must have counted there throughout (not in memory after a timeout)."""

    async def main() -> T:
        try:
            result = await work()
            if counters.redis_url is not None:
                assert await counters.state() == "redis"
                assert not counters.fell_back, "counted in memory: Redis did not answer"
            return result
        finally:
            await counters.close()

    return anyio.run(main)
