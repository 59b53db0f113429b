"""S12: a device cookie proves an earlier sign-in only when our key signed it and
it has not expired; anything else reads as no cookie, never as an error."""

from __future__ import annotations

import uuid

import pytest

from userservice.security.device_cookie import (
    DeviceClaim,
    make_device_cookie,
    new_nonce,
    read_device_cookie,
)

KEY = b"k" * 32
NOW = 1_700_000_000.0
USER = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _cookie(key: bytes = KEY, user: uuid.UUID = USER, expires: int = int(NOW) + 60) -> str:
    return make_device_cookie(key, DeviceClaim(user, new_nonce(), expires))


def test_a_cookie_reads_back_as_its_claim() -> None:
    value = _cookie()
    claim = read_device_cookie(KEY, value, NOW)
    assert claim is not None and claim.user_id == USER and claim.expires == int(NOW) + 60
    assert "@" not in value  # the account is its id, never the email


def test_each_cookie_names_a_new_device() -> None:
    first, second = (read_device_cookie(KEY, _cookie(), NOW) for _ in range(2))
    assert first is not None and second is not None and first.nonce != second.nonce


def test_another_key_or_an_expired_cookie_proves_nothing() -> None:
    assert read_device_cookie(KEY, _cookie(key=b"x" * 32), NOW) is None
    assert read_device_cookie(KEY, _cookie(expires=int(NOW)), NOW) is None


def test_changing_any_part_breaks_the_signature() -> None:
    value = _cookie()
    version, user, nonce, expires, mac = value.split(".")
    other_user = uuid.uuid4().hex
    forged = [
        ".".join((version, other_user, nonce, expires, mac)),
        ".".join((version, user, new_nonce(), expires, mac)),
        ".".join((version, user, nonce, str(int(expires) + 10**6), mac)),
        ".".join((version, user, nonce, expires, mac[:-1] + ("A" if mac[-1] != "A" else "B"))),
    ]
    for candidate in forged:
        assert read_device_cookie(KEY, candidate, NOW) is None, candidate


@pytest.mark.parametrize(
    "garbage",
    ["", ".", "v1....", "v2.a.b.c.d", "x" * 5000, "v1." + "0" * 32 + ".é" * 22 + ".1.a", "\x00"],
)
def test_garbage_is_no_cookie(garbage: str) -> None:
    assert read_device_cookie(KEY, garbage, NOW) is None
