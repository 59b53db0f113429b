"""S12: the failure window of each kind of login attempt."""

from __future__ import annotations

import uuid

from userservice.security.device_cookie import DeviceClaim
from userservice.services.login_limits import BrowserLogin, login_windows

OWNER = uuid.uuid4()
DEVICE = DeviceClaim(OWNER, "n" * 22, 2_000_000_000)


def test_cookieless_clients_count_per_account_and_network() -> None:
    windows = login_windows("ada@example.com", "10.0.0.5", browser=None)
    assert (windows.ceiling, windows.ip) == ("ada@example.com", "10.0.0.5")
    attacker = windows
    assert login_windows("ada@example.com", "10.0.0.77", browser=None).own == attacker.own
    assert login_windows("ada@example.com", "::ffff:10.0.0.9", browser=None).own == attacker.own
    assert login_windows("ada@example.com", "192.168.1.7", browser=None).own != attacker.own
    assert login_windows("bob@example.com", "10.0.0.5", browser=None).own != attacker.own


def test_a_device_of_this_account_has_its_own_window() -> None:
    untrusted = login_windows("ada@example.com", "10.0.0.5", browser=BrowserLogin())
    own = login_windows(
        "ada@example.com", "10.0.0.5", browser=BrowserLogin("c"), device=DEVICE, user_id=OWNER
    )
    assert own != untrusted
    assert own.ip is None and untrusted.ip == "10.0.0.5"
    other = DeviceClaim(OWNER, "m" * 22, 2_000_000_000)
    assert own != login_windows(
        "ada@example.com", "10.0.0.5", browser=BrowserLogin("c"), device=other, user_id=OWNER
    )


def test_a_device_of_another_account_is_worth_nothing() -> None:
    untrusted = login_windows("ada@example.com", "10.0.0.5", browser=BrowserLogin())
    for user_id in (uuid.uuid4(), None):
        assert (
            login_windows(
                "ada@example.com",
                "10.0.0.5",
                browser=BrowserLogin("c"),
                device=DEVICE,
                user_id=user_id,
            )
            == untrusted
        )
