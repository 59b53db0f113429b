"""Which failure window a login attempt counts in (S12).

The guessing limit stays, but an attacker must not be able to spend the owner's
budget (OWASP "Slow Down Online Guessing Attacks with Device Cookies"):
- a browser presenting a valid device cookie for this very account counts in its
  own window: others' failures cannot lock it out, its own lock only itself;
- any other browser counts in the account's window for untrusted clients;
- the password grant and HTTP Basic, which carry no cookies, count per
  (account, source network: /24 for IPv4, /64 for IPv6), so guesses from one
  network cannot lock out the owner on another; and in a ceiling per account, ten
  times as wide, so that an attacker holding many networks (an IPv6 /48 has 65,536
  /64s) still gets a bounded number of guesses per account.
Every attempt but a device's also counts in its client address's window (a device
proves an earlier sign-in, and its own window bounds it): a busy shared address
cannot lock the owner's browser out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from userservice.security.device_cookie import DeviceClaim
from userservice.security.networks import source_network
from userservice.security.throttle import Windows


@dataclass(frozen=True)
class BrowserLogin:
    """An attempt from the hosted sign-in page, with the device cookie it presented."""

    device_cookie: str | None = None


def current_password_windows(user_id: uuid.UUID) -> Windows:
    """The current password asked for a change by someone already signed in: a
    stolen access token must not buy unlimited guesses at it. A window of its own,
    so that those guesses lock nothing but this check."""
    return Windows(f"reauth:{user_id.hex}", None)


def login_windows(
    account: str,
    ip: str,
    *,
    browser: BrowserLogin | None,
    device: DeviceClaim | None = None,
    user_id: uuid.UUID | None = None,
) -> Windows:
    """The attempt's windows. `device` is the verified cookie's claim and `user_id`
    the account the attempt names (None when unknown); a cookie of another account
    is worth nothing here."""
    if browser is None:
        # The network comes first and holds no space, so no account name can
        # make two different pairs spell the same window.
        return Windows(f"net:{source_network(ip)} {account}", ip, ceiling=account)
    if device is not None and user_id is not None and device.user_id == user_id:
        return Windows(f"device:{device.nonce}", None)
    return Windows(f"acct:{account}", ip)
