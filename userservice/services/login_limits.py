"""Which failure window a login attempt counts in (S12).

The guessing limit stays, but an attacker must not be able to spend the owner's
budget (OWASP "Slow Down Online Guessing Attacks with Device Cookies"):
- a browser presenting a valid device cookie for this very account counts in its
  own window: others' failures cannot lock it out, its own lock only itself;
- any other browser counts in the account's window for untrusted clients;
- the password grant and HTTP Basic, which carry no cookies, count per
  (account, source network: /24 for IPv4, /64 for IPv6), so guesses from one
  network cannot lock out the owner on another.
Every attempt also counts in its client address's window (security/throttle.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from userservice.security.device_cookie import DeviceClaim
from userservice.security.networks import source_network


@dataclass(frozen=True)
class BrowserLogin:
    """An attempt from the hosted sign-in page, with the device cookie it presented."""

    device_cookie: str | None = None


def login_bucket(
    account: str,
    ip: str,
    *,
    browser: BrowserLogin | None,
    device: DeviceClaim | None = None,
    user_id: uuid.UUID | None = None,
) -> str:
    """The window's name. `device` is the verified cookie's claim and `user_id` the
    account the attempt names (None when unknown); a cookie of another account is
    worth nothing here."""
    if browser is None:
        # The network comes first and holds no space, so no account name can
        # make two different pairs spell the same bucket.
        return f"net:{source_network(ip)} {account}"
    if device is not None and user_id is not None and device.user_id == user_id:
        return f"device:{device.nonce}"
    return f"acct:{account}"
