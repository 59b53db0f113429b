"""Login throttling per failure window and per client IP (OWASP ASVS V2.2.1).

Which window an attempt's failures count in (the account's, a device's, an
account's on one network) is the services' choice (services/login_limits.py);
each window has the per-account limit, and every attempt also counts per IP.

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

from limits import RateLimitItem, parse, storage, strategies

from userservice.errors import Throttled


class LoginThrottle:
    def __init__(self, per_account: str, per_ip: str, storage_uri: str = "memory://") -> None:
        self._store = storage.storage_from_string(storage_uri)
        self._limiter = strategies.MovingWindowRateLimiter(self._store)
        self._per_account = parse(per_account)
        self._per_ip = parse(per_ip)
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()  # admitted, not yet settled, per key

    def _keys(self, bucket: str, ip: str) -> tuple[tuple[RateLimitItem, str], ...]:
        return ((self._per_account, f"bucket:{bucket}"), (self._per_ip, f"ip:{ip}"))

    def check(self, bucket: str, ip: str) -> None:
        """Admit one attempt, or raise Throttled when either key's failures plus its
        attempts in flight fill its window. An admitted attempt must be settled with
        failed(), succeeded() or released()."""
        keys = self._keys(bucket, ip)
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

    def failed(self, bucket: str, ip: str) -> None:
        with self._lock:
            for limit, key in self._keys(bucket, ip):
                self._limiter.hit(limit, "login", key)
                self._settle(key)

    def succeeded(self, bucket: str, ip: str) -> None:
        keys = self._keys(bucket, ip)
        bucket_limit, bucket_key = keys[0]
        with self._lock:
            # Its own window's failures go; another window's (an attacker's guesses
            # at the untrusted one) stay counted.
            self._limiter.clear(bucket_limit, "login", bucket_key)
            for _limit, key in keys:
                self._settle(key)

    def released(self, bucket: str, ip: str) -> None:
        """An attempt that ended without an answer about the password (the database
        failed, or the caller went away): it counts for neither side."""
        with self._lock:
            for _limit, key in self._keys(bucket, ip):
                self._settle(key)

    def _settle(self, key: str) -> None:
        self._in_flight[key] -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]  # no entry left behind per account or IP
