"""The two places throttle counters live (security/counters.py picks one): this
process's memory, and Redis shared by every worker and replica.

Both keep `limits`' own formats, so limits' strategies read the same state: a
window's counted events are limits' moving window (a list of timestamps, newest
first, at most `amount` long), and an attempt's hold is a limits counter. Holds
are counted in time buckets of `hold_seconds`: an attempt admitted in bucket b
adds 1 to b's counter and takes it back when settled; a check sums the current
and the previous bucket. So a hold is seen for at least `hold_seconds` (longer
than any attempt takes) and at most twice that: a process killed mid-attempt
leaves a hold that ages out, and a counter is never taken below zero.

On Redis, an admission (every window's failures and holds read, and a hold taken
in each when all have room) is one script, atomic on the server: attempts through
different processes can never together pass a limit, and a login costs two round
trips, one to be admitted and one to be settled."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, cast

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.storage import MemoryStorage
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from userservice.security.counter_scripts import ADMIT, SETTLE


class Window:
    """One moving window: at most `limit.amount` events per `limit`'s period."""

    __slots__ = ("amount", "key", "period")

    def __init__(self, limit: RateLimitItem, *identifiers: str) -> None:
        self.key: str = limit.key_for(*identifiers)  # limits' own key for it
        self.amount: int = limit.amount
        self.period: int = limit.get_expiry()


# Outcomes of an attempt (settle): its windows count a failure, its first window is
# emptied (a success), or neither (no answer about the password).
FAILED, SUCCEEDED, RELEASED = "failed", "succeeded", "released"


# An admission's answer: 0.0 and no window when admitted (a hold taken in each);
# else the seconds to wait and the positions of the windows that were full, so
# that a refusal says which limit refused without a second look.
Admission = tuple[float, tuple[int, ...]]
ADMITTED: Admission = (0.0, ())


class Store(Protocol):
    async def admit(self, windows: Sequence[Window], now: float) -> Admission: ...
    async def settle(
        self, windows: Sequence[Window], held_at: float | None, outcome: str, now: float
    ) -> None: ...
    async def hit(self, window: Window, now: float) -> float: ...
    async def held(self, window: Window, now: float) -> int: ...
    async def ping(self) -> None: ...


def _bucket(at: float, hold_seconds: float) -> int:
    return math.floor(at / hold_seconds)


def _hold_key(key: str, bucket: int) -> str:
    return f"{key}/held/{bucket}"


class MemoryStore:
    """limits' MemoryStorage, not its asyncio twin: that one binds its locks and
    expiry task to the event loop it first ran on and hops to a thread per key on
    every expiry pass, while this one answers in microseconds from the loop and
    from worker threads alike. One lock makes an admission atomic over its windows."""

    def __init__(self, hold_seconds: float) -> None:
        self._storage = MemoryStorage()
        self._hold_seconds = hold_seconds
        self._hold_ttl = math.ceil(2 * hold_seconds) + 1
        self._lock = threading.Lock()

    def _held(self, key: str, now: float) -> int:
        bucket = _bucket(now, self._hold_seconds)
        return sum(max(0, self._storage.get(_hold_key(key, b))) for b in (bucket, bucket - 1))

    def admit_now(self, windows: Sequence[Window], now: float) -> Admission:
        with self._lock:
            wait = 0.0
            full: list[int] = []
            for index, window in enumerate(windows):
                start, failures = self._storage.get_moving_window(
                    window.key, window.amount, window.period
                )
                if failures + self._held(window.key, now) >= window.amount:
                    # Full of failures: until the oldest ages out. Full only with
                    # holds: those settle within a hash's time.
                    failed = failures >= window.amount
                    wait = max(wait, start + window.period - now if failed else 1.0)
                    full.append(index)
            if wait > 0:
                return wait, tuple(full)
            bucket = _bucket(now, self._hold_seconds)
            for window in windows:
                self._storage.incr(_hold_key(window.key, bucket), self._hold_ttl)
            return ADMITTED

    def settle_now(
        self, windows: Sequence[Window], held_at: float | None, outcome: str, now: float
    ) -> None:
        with self._lock:
            for index, window in enumerate(windows):
                if outcome == FAILED:
                    self._storage.acquire_entry(window.key, window.amount, window.period)
                elif outcome == SUCCEEDED and index == 0:
                    self._storage.clear(window.key)
                if held_at is not None:
                    key = _hold_key(window.key, _bucket(held_at, self._hold_seconds))
                    if self._storage.decr(key) <= 0:
                        self._storage.clear(key)  # nothing left behind per account or IP

    def hit_now(self, window: Window, now: float) -> float:
        with self._lock:
            if self._storage.acquire_entry(window.key, window.amount, window.period):
                return 0.0
            start, _ = self._storage.get_moving_window(window.key, window.amount, window.period)
            return max(1.0, start + window.period - now)

    async def held(self, window: Window, now: float) -> int:
        """The holds counted in `window` at `now`."""
        with self._lock:
            return self._held(window.key, now)

    async def admit(self, windows: Sequence[Window], now: float) -> Admission:
        return self.admit_now(windows, now)

    async def settle(
        self, windows: Sequence[Window], held_at: float | None, outcome: str, now: float
    ) -> None:
        self.settle_now(windows, held_at, outcome, now)

    async def hit(self, window: Window, now: float) -> float:
        return self.hit_now(window, now)

    async def ping(self) -> None:
        return None


class _LoopClient:
    """limits' storage and our scripts on one redis-py client: an asyncio client
    belongs to the event loop it first ran on."""

    def __init__(self, uri: str, timeout: float) -> None:
        options: dict[str, Any] = {
            "implementation": "redispy",
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # One quick retry covers a pooled connection Redis closed (a restart);
            # redis-py's default backs off for seconds, past any request's patience.
            "retry": Retry(NoBackoff(), 1),
        }
        self.storage = RedisStorage(uri, **options)
        # limits' own redis-py client: our scripts share its pool and its prefix.
        bridge = cast(RedispyBridge, self.storage.bridge)
        connection = cast(Redis, bridge.get_connection())
        self.connection = connection
        self.admit = connection.register_script(ADMIT)
        self.settle = connection.register_script(SETTLE)

    def key(self, key: str) -> str:
        return str(self.storage.bridge.prefixed_key(key))


def limits_uri(redis_url: str) -> str:
    """limits' name for a Redis URL of the settings."""
    if redis_url.startswith("unix:"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


class RedisStore:
    def __init__(self, redis_url: str, timeout_seconds: float, hold_seconds: float) -> None:
        self._uri = limits_uri(redis_url)
        self._timeout = timeout_seconds
        self._hold_seconds = hold_seconds
        self._hold_ttl = math.ceil(2 * hold_seconds) + 1
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._lock = threading.Lock()

    def _client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                # A loop that ended (a test client's request) takes its client along.
                for ended in [other for other in self._clients if other.is_closed()]:
                    del self._clients[ended]
                client = self._clients[loop] = _LoopClient(self._uri, self._timeout)
            return client

    async def admit(self, windows: Sequence[Window], now: float) -> Admission:
        client = self._client()
        bucket = _bucket(now, self._hold_seconds)
        keys: list[str] = []
        args: list[str | float | int] = [repr(now), self._hold_ttl]
        for window in windows:
            key = client.key(window.key)
            keys += [key, _hold_key(key, bucket), _hold_key(key, bucket - 1)]
            args += [window.amount, window.period]
        # [wait as text, then the 0-based positions of the full windows]
        answer = await client.admit(keys=keys, args=args)
        wait = float(answer[0])
        return (wait, tuple(int(index) for index in answer[1:])) if wait > 0 else ADMITTED

    async def settle(
        self, windows: Sequence[Window], held_at: float | None, outcome: str, now: float
    ) -> None:
        client = self._client()
        bucket = _bucket(held_at if held_at is not None else now, self._hold_seconds)
        keys: list[str] = []
        args: list[str | float | int] = [repr(now), outcome, "1" if held_at is not None else "0"]
        for window in windows:
            key = client.key(window.key)
            keys += [key, _hold_key(key, bucket)]
            args += [window.amount, window.period]
        await client.settle(keys=keys, args=args)

    async def hit(self, window: Window, now: float) -> float:
        storage = self._client().storage
        if await storage.acquire_entry(window.key, window.amount, window.period):
            return 0.0
        start, _ = await storage.get_moving_window(window.key, window.amount, window.period)
        return max(1.0, float(start) + window.period - now)

    async def held(self, window: Window, now: float) -> int:
        storage = self._client().storage
        bucket = _bucket(now, self._hold_seconds)
        counts = [await storage.get(_hold_key(window.key, b)) for b in (bucket, bucket - 1)]
        return sum(max(0, int(count)) for count in counts)

    async def ping(self) -> None:
        await cast("Awaitable[bool]", self._client().connection.ping())

    async def close(self) -> None:
        """Close the running loop's client (the others' loops have ended, or close
        their sockets as they end)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.connection.aclose()


def now() -> float:
    return time.time()
