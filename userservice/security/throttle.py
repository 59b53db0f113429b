"""Login throttling per account and per client IP (OWASP ASVS V2.2.1).

Sliding windows from the `limits` library: failures age out, so there is no
permanent lockout an attacker could use to deny service to a victim. Storage is
in-process by default; a shared one (Redis) makes it hold across replicas.
"""

from __future__ import annotations

import math
import time

from limits import parse, storage, strategies

from userservice.errors import Throttled


class LoginThrottle:
    def __init__(self, per_account: str, per_ip: str, storage_uri: str = "memory://") -> None:
        self._store = storage.storage_from_string(storage_uri)
        self._limiter = strategies.MovingWindowRateLimiter(self._store)
        self._per_account = parse(per_account)
        self._per_ip = parse(per_ip)

    def check(self, account: str, ip: str) -> None:
        """Raise Throttled when either key has used up its failures."""
        for limit, key in ((self._per_account, f"acct:{account}"), (self._per_ip, f"ip:{ip}")):
            if not self._limiter.test(limit, "login", key):
                reset = self._limiter.get_window_stats(limit, "login", key).reset_time
                raise Throttled(math.ceil(reset - time.time()))

    def failed(self, account: str, ip: str) -> None:
        self._limiter.hit(self._per_account, "login", f"acct:{account}")
        self._limiter.hit(self._per_ip, "login", f"ip:{ip}")

    def succeeded(self, account: str) -> None:
        self._limiter.clear(self._per_account, "login", f"acct:{account}")
