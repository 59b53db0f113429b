"""Login throttling per failure window and per client IP (OWASP ASVS V2.2.1).

Which windows an attempt's failures count in is the services' choice
(services/login_limits.py): its own window (the account's, a device's, an
account's on one network) with the per-account limit; optionally a ceiling window
with CEILING_FACTOR times that limit (an account's total over every network); and
its client address's window with the per-IP limit, unless exempted.

Moving windows from the `limits` library, counted in security/counters.py's
store (this process's memory, or Redis shared by every worker and replica, N1):
failures age out, so there is no permanent lockout an attacker could use to deny
service to a victim.

An attempt holds a place in its windows from `check` until it is settled, in the
same store: logins are awaited on the event loop, and run in many processes, so
without it any number of guesses sent at once would all pass `check` before the
first failure was counted. Admission is atomic over the attempt's windows, so
attempts through different processes never together pass a limit.

Coroutines for the event loop (logins); `check_blocking` and `settle_blocking` for
synchronous services in worker threads (the current password on the account page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from limits import parse

from userservice.errors import Throttled
from userservice.security.counters import (
    FAILED,
    RELEASED,
    SUCCEEDED,
    Counters,
    Hold,
    Refused,
    Window,
)

# A ceiling window allows this many times the per-account limit.
CEILING_FACTOR = 10

LoginLimit = Literal["login_account", "login_ip"]


class LoginThrottled(Throttled):
    """A sign-in refused, naming the limit that refused it (for the metrics):
    `login_ip` when the client address's window was full, else `login_account`.
    Told by the admission itself: asking again would cost another round trip and,
    for a moment, hold a place a concurrent sign-in could be refused for."""

    def __init__(self, retry_after: int, limit: LoginLimit) -> None:
        super().__init__(retry_after)
        self.limit: LoginLimit = limit


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
    def __init__(self, per_account: str, per_ip: str, counters: Counters | None = None) -> None:
        self._counters = counters if counters is not None else Counters()
        self._per_account = parse(per_account)
        item = self._per_account
        self._ceiling = type(item)(item.amount * CEILING_FACTOR, item.multiples)
        self._per_ip = parse(per_ip)

    def _windows(self, windows: Windows) -> tuple[Window, ...]:
        # The attempt's own window first: a success empties it (settle).
        found = [Window(self._per_account, "login", f"bucket:{windows.own}")]
        if windows.ceiling is not None:
            found.append(Window(self._ceiling, "login", f"ceiling:{windows.ceiling}"))
        if windows.ip is not None:
            found.append(Window(self._per_ip, "login", f"ip:{windows.ip}"))
        return tuple(found)

    async def check(self, windows: Windows) -> Hold:
        """Admit one attempt, or raise LoginThrottled when any of its windows'
        failures plus attempts in flight fill it. An admitted attempt must be
        settled with failed(), succeeded() or released()."""
        asked = self._windows(windows)
        admission = await self._counters.admit(asked)
        if isinstance(admission, Hold):
            return admission
        # The IP window, when there is one, is the last asked for (_windows).
        by_ip = windows.ip is not None and len(asked) - 1 in admission.full
        raise LoginThrottled(_retry_after(admission), "login_ip" if by_ip else "login_account")

    async def failed(self, hold: Hold) -> None:
        await self._counters.settle(hold, FAILED)

    async def succeeded(self, hold: Hold) -> None:
        # Its own window's failures go; another window's (an attacker's guesses
        # at the untrusted one) stay counted.
        await self._counters.settle(hold, SUCCEEDED)

    async def released(self, hold: Hold) -> None:
        """An attempt that ended without an answer about the password (the database
        failed, or the caller went away): it counts for neither side."""
        await self._counters.settle(hold, RELEASED)

    def check_blocking(self, windows: Windows) -> Hold:
        return _admitted(self._counters.admit_blocking(self._windows(windows)))

    def settle_blocking(self, hold: Hold, outcome: str) -> None:
        """outcome: counters.FAILED, SUCCEEDED or RELEASED."""
        self._counters.settle_blocking(hold, outcome)


def _admitted(admission: Hold | Refused) -> Hold:
    if isinstance(admission, Hold):
        return admission
    raise Throttled(_retry_after(admission))


def _retry_after(refused: Refused) -> int:
    # Full of failures: until the oldest ages out. Full only with attempts in
    # flight: those settle within a hash's time (1 s).
    return max(1, math.ceil(refused.wait))
