"""Limits on the requests that make the service send mail: sign-up, a new
verification link, a password reset (L5).

Two windows, counted for every request whether or not the address has an account
(so neither answer tells an account apart): one per client network (the /24 or
/64 logins group by, S12: rotating addresses within what one subscriber holds
opens no new window), whose excess is refused (a script sweeping addresses), and
one per action and mail address, whose excess is dropped without a word (nobody's
mailbox is flooded through us, and the answer stays the one every address gets).

Moving windows of the `limits` library in process memory, as for logins
(security/throttle.py): each worker keeps its own counters."""

from __future__ import annotations

import math
import threading
import time

from limits import parse, storage, strategies

from userservice.errors import Throttled
from userservice.security.networks import source_network


class MailThrottle:
    def __init__(self, per_address: str, per_ip: str, storage_uri: str = "memory://") -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))
        self._per_address = parse(per_address)
        self._per_ip = parse(per_ip)
        self._lock = threading.Lock()

    def check_source(self, ip: str) -> None:
        """Count one request from `ip`'s network; Throttled when its window is full."""
        network = source_network(ip)
        with self._lock:
            if not self._limiter.hit(self._per_ip, "mail-ip", network):
                stats = self._limiter.get_window_stats(self._per_ip, "mail-ip", network)
                raise Throttled(max(1, math.ceil(stats.reset_time - time.time())))

    def allow_mail(self, action: str, address: str) -> bool:
        """Count one mail of `action` to `address`; False when it must not go."""
        with self._lock:
            return self._limiter.hit(self._per_address, "mail-to", action, address)
