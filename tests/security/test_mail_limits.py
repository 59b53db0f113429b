"""L5: the mail requests' windows (security/mail_limits.py): a client's excess is
refused with a wait, an address's excess is only reported, and windows are kept
apart per client, per address and per action."""

from __future__ import annotations

import pytest

from userservice.errors import Throttled
from userservice.security.mail_limits import MailThrottle


def test_a_client_over_its_window_is_refused_with_a_wait() -> None:
    throttle = MailThrottle("10/hour", "3/hour")
    for _ in range(3):
        throttle.check_source("192.0.2.1")
    with pytest.raises(Throttled) as refused:
        throttle.check_source("192.0.2.1")
    assert 0 < refused.value.retry_after <= 3600
    throttle.check_source("198.51.100.1")  # another network has its own window


def test_an_address_over_its_window_gets_no_more_mail() -> None:
    throttle = MailThrottle("2/hour", "100/hour")
    assert throttle.allow_mail("reset", "ada@example.com")
    assert throttle.allow_mail("reset", "ada@example.com")
    assert not throttle.allow_mail("reset", "ada@example.com")
    assert throttle.allow_mail("verify", "ada@example.com")  # another action
    assert throttle.allow_mail("reset", "bob@example.com")  # another address


@pytest.mark.parametrize(
    ("one_network", "elsewhere"),
    [
        (("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::abcd"), "2001:db8:1:3::1"),
        (("192.0.2.1", "192.0.2.200", "192.0.2.77"), "192.0.3.1"),
    ],
)
def test_a_client_is_its_network(one_network: tuple[str, str, str], elsewhere: str) -> None:
    # A /64 (IPv6) or /24 (IPv4) is what one subscriber holds, as for logins (L5):
    # rotating addresses within it opens no new window.
    first, second, third = one_network
    throttle = MailThrottle("10/hour", "2/hour")
    throttle.check_source(first)
    throttle.check_source(second)
    with pytest.raises(Throttled):
        throttle.check_source(third)
    throttle.check_source(elsewhere)
