"""Stateless WebAuthn challenges (M9): 16 random bytes, an expiry and an HMAC that
binds them to a purpose and an account or half-login; anything else is refused."""

from __future__ import annotations

import secrets

import pytest

from userservice.security import webauthn_challenges as challenges

KEY = secrets.token_bytes(32)
NOW = 1_800_000_000.0
USER = "0f" * 16


def test_m9_a_challenge_checks_until_it_expires() -> None:
    minted = challenges.mint(KEY, challenges.REGISTER, USER, NOW, 300)
    assert len(minted) == challenges.LENGTH
    assert challenges.check(KEY, minted, challenges.REGISTER, USER, NOW + 299) == NOW + 300
    assert challenges.check(KEY, minted, challenges.REGISTER, USER, NOW + 300) is None


def test_m9_each_challenge_is_new() -> None:
    made = {challenges.mint(KEY, challenges.SIGN_IN, "", NOW, 300) for _ in range(50)}
    assert len(made) == 50


@pytest.mark.parametrize(
    "purpose, binding",
    [
        (challenges.SIGN_IN, USER),
        (challenges.SECOND_FACTOR, USER),
        (challenges.REGISTER, "1e" * 16),
        (challenges.REGISTER, ""),
    ],
)
def test_m9_purpose_and_binding_are_part_of_the_mac(purpose: str, binding: str) -> None:
    minted = challenges.mint(KEY, challenges.REGISTER, USER, NOW, 300)
    assert challenges.check(KEY, minted, purpose, binding, NOW) is None


def test_m9_another_key_or_a_changed_byte_is_refused() -> None:
    minted = challenges.mint(KEY, challenges.SIGN_IN, "", NOW, 300)
    assert challenges.check(secrets.token_bytes(32), minted, challenges.SIGN_IN, "", NOW) is None
    for index in range(len(minted)):
        changed = bytearray(minted)
        changed[index] ^= 0x01
        assert challenges.check(KEY, bytes(changed), challenges.SIGN_IN, "", NOW) is None
    # A later expiry written into the challenge does not check either.
    later = minted[:16] + int(NOW + 9999).to_bytes(8, "big") + minted[24:]
    assert challenges.check(KEY, later, challenges.SIGN_IN, "", NOW + 100) is None


@pytest.mark.parametrize("garbage", [b"", b"x", bytes(55), bytes(57), bytes(64)])
def test_m9_wrong_lengths_are_refused(garbage: bytes) -> None:
    assert challenges.check(KEY, garbage, challenges.SIGN_IN, "", NOW) is None


def test_m9_unknown_purposes_are_refused() -> None:
    with pytest.raises(ValueError):
        challenges.mint(KEY, "login", "", NOW, 300)
    minted = challenges.mint(KEY, challenges.SIGN_IN, "", NOW, 300)
    assert challenges.check(KEY, minted, "login", "", NOW) is None


def test_m9_the_spent_digest_is_sha256_hex() -> None:
    minted = challenges.mint(KEY, challenges.SIGN_IN, "", NOW, 300)
    assert len(challenges.digest(minted)) == 64
    assert challenges.digest(minted) != challenges.digest(minted[:-1] + b"\x00")
