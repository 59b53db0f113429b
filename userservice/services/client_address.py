"""The client address as the second-factor services store, log and mail it."""

from __future__ import annotations

MAX_IP = 64


def printable_ip(ip: str | None) -> str | None:
    # Client-supplied behind proxies: no control characters into a mail or a log
    # line, and no longer than the column.
    if not ip:
        return None
    return "".join(c for c in ip if c.isprintable())[:MAX_IP] or None
