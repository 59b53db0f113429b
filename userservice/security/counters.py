"""Where throttle counters live: this process's memory, or Redis shared by every
worker and replica. One port, two backends (security/counter_stores.py), chosen
once from the settings.

When Redis does not answer within the timeout (N2), counting goes on in this
process's memory rather than failing the request or letting it through
uncounted: during an outage every process allows each window's limit on its own,
and Redis the limit once over the time before and after it, so a window allows
at most (N processes + 1) times the limit, never more. Redis is
tried again after RETRY_SECONDS by one request of the process (a probe) while the
others go on counting in memory; one WARNING line says counting left Redis, one
INFO line that it is back.

Coroutines for the event loop; the `*_blocking` twins are for synchronous
services running in worker threads: without Redis they count in memory on the
spot, with it they hand the call to the event loop that started the thread
(anyio.from_thread), so that the loop keeps the only Redis client and nothing
ever waits for Redis on the loop's thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.from_thread
from redis.exceptions import RedisError

from userservice.security.counter_stores import (
    FAILED,
    RELEASED,
    SUCCEEDED,
    MemoryStore,
    RedisStore,
    Store,
    Window,
    now,
)

__all__ = ["FAILED", "RELEASED", "SUCCEEDED", "Counters", "Hold", "Refused", "Window"]

log = logging.getLogger("userservice.security")

# Longer than any attempt may take: an attempt gives up after half of it (the
# AccountService's attempt_seconds), however long the hash pool's queue; a hold
# left by a killed process ages out within twice this.
HOLD_SECONDS = 60.0
# How long counting stays in memory after Redis failed to answer, before Redis is
# tried again: one request per process per RETRY_SECONDS (the probe) pays the timeout.
RETRY_SECONDS = 5.0
_DOWN = (RedisError, OSError, TimeoutError)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Hold:
    """An admitted attempt's place in its windows until it is settled."""

    windows: tuple[Window, ...]
    store: Store
    at: float


@dataclass(frozen=True, slots=True)
class Refused:
    """An attempt not admitted: the seconds until it would be, and which of its
    windows were full (by position in the windows asked for)."""

    wait: float
    full: tuple[int, ...]


class Counters:
    """The counter store the throttles count in (security/throttle.py,
    security/mail_limits.py)."""

    def __init__(
        self,
        redis_url: str | None = None,
        timeout_seconds: float = 0.5,
        *,
        hold_seconds: float = HOLD_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.redis_url = redis_url
        self.timeout_seconds = timeout_seconds
        self._memory = MemoryStore(hold_seconds)
        self._redis = RedisStore(redis_url, timeout_seconds, hold_seconds) if redis_url else None
        self._retry_seconds = retry_seconds
        self._retry_at: float | None = None  # monotonic; set while Redis is not answering
        self.fell_back = False  # whether Redis ever failed to answer (for reports and tests)
        self._state = threading.Lock()

    # -- which store -----------------------------------------------------------

    def _store(self) -> Store:
        if self._redis is None:
            return self._memory
        if self._retry_at is None:
            return self._redis
        with self._state:
            retry_at = self._retry_at
            if retry_at is None:
                return self._redis
            moment = time.monotonic()
            if moment < retry_at:
                return self._memory
            # This request is the probe: the next retry moment is set before it
            # waits, so that the requests behind it count in memory meanwhile
            # instead of each paying the timeout.
            self._retry_at = moment + self._retry_seconds
            return self._redis

    def _failed(self, error: BaseException) -> None:
        with self._state:
            first = self._retry_at is None
            self._retry_at = time.monotonic() + self._retry_seconds
            self.fell_back = True
        if first:
            log.warning(
                "Redis did not answer within %.1f s (%s): throttle counters are kept in "
                "this process's memory, each process allowing the limits on its own, "
                "until Redis answers again (tried every %.0f s)",
                self.timeout_seconds,
                type(error).__name__,
                self._retry_seconds,
            )

    def _answered(self) -> None:
        if self._retry_at is None:
            return
        with self._state:
            was_down, self._retry_at = self._retry_at is not None, None
        if was_down:
            log.info("Redis answers again: throttle counters are shared again")

    async def _on(self, store: Store, call: Callable[[Store], Awaitable[T]]) -> tuple[T] | None:
        """`call`'s result on `store`; None when it is Redis and Redis did not answer."""
        if store is self._memory:
            return (await call(store),)
        try:
            with anyio.fail_after(self.timeout_seconds):
                result = await call(store)
        except _DOWN as error:
            self._failed(error)
            return None
        self._answered()
        return (result,)

    # -- the port ----------------------------------------------------------------

    async def admit(self, windows: Sequence[Window]) -> Hold | Refused:
        """A hold in every window when each has room for one more attempt (its
        counted events plus the holds of attempts in flight below its amount);
        else the seconds until one would, and which windows were full."""
        chosen = self._store()
        at = now()
        answer = await self._on(chosen, lambda store: store.admit(windows, at))
        if answer is None:
            chosen, (wait, full) = self._memory, self._memory.admit_now(windows, at)
        else:
            ((wait, full),) = answer
        return Refused(wait, full) if wait > 0 else Hold(tuple(windows), chosen, at)

    async def settle(self, hold: Hold, outcome: str) -> None:
        """FAILED: one more event in each window; SUCCEEDED: the first window
        emptied; RELEASED: neither. The hold is given back in every case. Shielded:
        an attempt whose request is cancelled still gives its place back."""
        with anyio.CancelScope(shield=True):
            at = now()
            done = await self._on(
                hold.store, lambda store: store.settle(hold.windows, hold.at, outcome, at)
            )
            if done is None and hold.store is not self._memory:
                # Counted here instead, so that an outage forgets no failure; the
                # hold on Redis ages out.
                self._memory.settle_now(hold.windows, None, outcome, at)

    async def hit(self, window: Window) -> float:
        """Count one event when the window has room (0.0); else the seconds until
        it has, and nothing is counted."""
        at = now()
        answer = await self._on(self._store(), lambda store: store.hit(window, at))
        return self._memory.hit_now(window, at) if answer is None else answer[0]

    async def state(self) -> str:
        """Where counting happens now, for the readiness report (never failing it)."""
        if self._redis is None:
            return "process memory"
        if self._store() is self._memory:
            return "process memory: Redis is not answering"
        answered = await self._on(self._redis, lambda store: store.ping())
        return "redis" if answered is not None else "process memory: Redis is not answering"

    async def close(self) -> None:
        """Release the connections this process opened (at shutdown)."""
        if self._redis is not None:
            await self._redis.close()

    # -- from worker threads ------------------------------------------------------

    def admit_blocking(self, windows: Sequence[Window]) -> Hold | Refused:
        if self._redis is None:
            at = now()
            wait, full = self._memory.admit_now(windows, at)
            return Refused(wait, full) if wait > 0 else Hold(tuple(windows), self._memory, at)
        return self._on_loop(self.admit, windows)

    def settle_blocking(self, hold: Hold, outcome: str) -> None:
        if hold.store is self._memory:
            self._memory.settle_now(hold.windows, hold.at, outcome, now())
            return
        self._on_loop(self.settle, hold, outcome)

    def hit_blocking(self, window: Window) -> float:
        if self._redis is None:
            return self._memory.hit_now(window, now())
        return self._on_loop(self.hit, window)

    def _on_loop(self, call: Callable[..., Awaitable[T]], *args: object) -> T:
        async def run() -> T:
            return await call(*args)

        try:
            return anyio.from_thread.run(run)
        except anyio.NoEventLoopError:
            pass

        # Not a worker thread of an event loop (a script, a synchronous test): a
        # loop of its own for this one call, its client closed with it.
        async def once() -> T:
            try:
                return await run()
            finally:
                if self._redis is not None:
                    await self._redis.close()

        return anyio.run(once)
