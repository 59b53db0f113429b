"""Login throttling per failure window and per client IP (OWASP ASVS V2.2.1).

Which windows an attempt's failures count in is the services' choice
(services/login_limits.py): its own window (the account's, a device's, an
account's on one network) with the per-account limit; optionally a ceiling window
with CEILING_FACTOR times that limit (an account's total over every network); and
its client address's window with the per-IP limit, unless exempted.

Sliding windows from the `limits` library: failures age out, so there is no
permanent lockout an attacker could use to deny service to a victim. The store is
in process memory (each worker keeps its own), so its calls take microseconds and
may run on the event loop; a network store (Redis) would need `limits.aio`.

An attempt holds a place in both windows from `check` until it is settled: logins
are awaited on the event loop, so without it any number of guesses sent at once
would all pass `check` before the first failure was counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from limits import RateLimitItem, parse, storage, strategies

from userservice.errors import Throttled

# A ceiling window allows this many times the per-account limit.
CEILING_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Windows:
    """The failure windows one login attempt counts in."""

    own: str  # cleared when the attempt succeeds
    ip: str | None  # None: exempt from the per-IP window
    ceiling: str | None = None

    @property
    def kind(self) -> str:
        return self.own.split(":", 1)[0]


class LoginThrottle:
    def __init__(self, per_account: str, per_ip: str, storage_uri: str = "memory://") -> None:
        self._store = storage.storage_from_string(storage_uri)
        self._limiter = strategies.MovingWindowRateLimiter(self._store)
        self._per_account = parse(per_account)
        item = self._per_account
        self._ceiling = type(item)(item.amount * CEILING_FACTOR, item.multiples)
        self._per_ip = parse(per_ip)
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()  # admitted, not yet settled, per key

    def _keys(self, windows: Windows) -> tuple[tuple[RateLimitItem, str], ...]:
        keys = [(self._per_account, f"bucket:{windows.own}")]
        if windows.ceiling is not None:
            keys.append((self._ceiling, f"ceiling:{windows.ceiling}"))
        if windows.ip is not None:
            keys.append((self._per_ip, f"ip:{windows.ip}"))
        return tuple(keys)

    def check(self, windows: Windows) -> None:
        """Admit one attempt, or raise Throttled when either key's failures plus its
        attempts in flight fill its window. An admitted attempt must be settled with
        failed(), succeeded() or released()."""
        keys = self._keys(windows)
        with self._lock:
            for limit, key in keys:
                stats = self._limiter.get_window_stats(limit, "login", key)
                if stats.remaining <= self._in_flight[key]:
                    # Full of failures: until the oldest ages out. Full only with
                    # attempts in flight: those settle within a hash's time.
                    wait = stats.reset_time - time.time() if stats.remaining <= 0 else 1
                    raise Throttled(max(1, math.ceil(wait)))
            for _limit, key in keys:
                self._in_flight[key] += 1

    def failed(self, windows: Windows) -> None:
        with self._lock:
            for limit, key in self._keys(windows):
                self._limiter.hit(limit, "login", key)
                self._settle(key)

    def succeeded(self, windows: Windows) -> None:
        keys = self._keys(windows)
        bucket_limit, bucket_key = keys[0]
        with self._lock:
            # Its own window's failures go; another window's (an attacker's guesses
            # at the untrusted one) stay counted.
            self._limiter.clear(bucket_limit, "login", bucket_key)
            for _limit, key in keys:
                self._settle(key)

    def released(self, windows: Windows) -> None:
        """An attempt that ended without an answer about the password (the database
        failed, or the caller went away): it counts for neither side."""
        with self._lock:
            for _limit, key in self._keys(windows):
                self._settle(key)

    def _settle(self, key: str) -> None:
        self._in_flight[key] -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]  # no entry left behind per account or IP
