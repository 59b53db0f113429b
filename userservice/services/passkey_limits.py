"""The throttle of passwordless sign-in (M9, S12): no account is named before the
answer, so an attempt is charged to its client address. Each refused answer
writes a `login.failed` row; without a limit an anonymous client could write
rows without end. Past the limit the attempt is refused before anything is
parsed or stored (429), as a password sign-in is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from userservice.errors import InvalidPasskey, Throttled
from userservice.security.counters import FAILED, RELEASED
from userservice.security.throttle import LoginThrottle, Windows
from userservice.services.audit import audit


def passwordless_windows(ip: str | None) -> Windows:
    """The address's window shared with password sign-ins (login_limit_per_ip),
    and one of passwordless failures from that address at the per-account rate:
    no account stands behind the attempt, the address is all there is."""
    address = ip or "unknown"
    return Windows(f"passkey:{address}", address)


@contextmanager
def charged(throttle: LoginThrottle | None, ip: str | None) -> Iterator[None]:
    """Admit one passwordless attempt (Throttled past the limit, logged, never
    stored: a refusal row per attempt is what the limit prevents). A refused
    answer counts as a failure, as a wrong password does; a success or an error
    that says nothing about the answer counts for neither side."""
    if throttle is None:
        # A service built without one (embedded use): nothing to charge.
        yield
        return
    windows = passwordless_windows(ip)
    try:
        hold = throttle.check_blocking(windows)
    except Throttled:
        audit("login.throttled", ip=ip, window=windows.kind, method="passkey")
        raise
    outcome = RELEASED
    try:
        yield
    except InvalidPasskey:
        outcome = FAILED
        raise
    finally:
        throttle.settle_blocking(hold, outcome)
