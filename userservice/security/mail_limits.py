"""Limits on the requests that make the service send mail: sign-up, a new
verification link, a password reset (L5).

Two windows, counted for every request whether or not the address has an account
(so neither answer tells an account apart): one per client network (the /24 or
/64 logins group by, S12: rotating addresses within what one subscriber holds
opens no new window), whose excess is refused (a script sweeping addresses), and
one per action and mail address, whose excess is dropped without a word (nobody's
mailbox is flooded through us, and the answer stays the one every address gets).

Moving windows of the `limits` library in security/counters.py's store, as for
logins: with Redis, every worker and replica counts in the same windows (N3).
The services that call these run in worker threads (they queue mail in a unit of
work): the methods block that thread, never the event loop."""

from __future__ import annotations

import math
from collections.abc import Callable

from limits import parse

from userservice.errors import Throttled
from userservice.security.counters import Counters, Window
from userservice.security.networks import source_network


class MailThrottle:
    def __init__(
        self,
        per_address: str,
        per_ip: str,
        counters: Counters | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._counters = counters if counters is not None else Counters()
        # Told of every refused request (the metrics' throttled count).
        self._on_refused = on_refused
        self._per_address = parse(per_address)
        self._per_ip = parse(per_ip)

    def check_source(self, ip: str) -> None:
        """Count one request from `ip`'s network; Throttled when its window is full."""
        window = Window(self._per_ip, "mail-ip", source_network(ip))
        wait = self._counters.hit_blocking(window)
        if wait > 0:
            if self._on_refused is not None:
                self._on_refused()
            raise Throttled(max(1, math.ceil(wait)))

    def allow_mail(self, action: str, address: str) -> bool:
        """Count one mail of `action` to `address`; False when it must not go."""
        window = Window(self._per_address, "mail-to", action, address)
        return self._counters.hit_blocking(window) <= 0
