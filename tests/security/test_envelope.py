"""S11: the at-rest envelope: AES-256-GCM under a key derived from the operator's
secret, bound to the row it was written for."""

from __future__ import annotations

import pytest

from userservice.security.envelope import Envelope, EnvelopeError, is_envelope

SECRET = "s" * 40
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)


def test_sealed_values_open_only_for_their_own_row() -> None:
    box = Envelope(SECRET)
    sealed = box.seal(PEM, "signing_keys/kid-1")
    assert is_envelope(sealed) and sealed.startswith("enc:v1:")
    assert "PRIVATE KEY" not in sealed and "MIGHAgEA" not in sealed
    assert box.open(sealed, "signing_keys/kid-1") == PEM
    # A ciphertext copied onto another row does not decrypt there.
    with pytest.raises(EnvelopeError):
        box.open(sealed, "signing_keys/kid-2")


def test_each_seal_uses_a_fresh_nonce() -> None:
    box = Envelope(SECRET)
    assert box.seal(PEM, "row") != box.seal(PEM, "row")


def test_another_secret_cannot_open_it() -> None:
    sealed = Envelope(SECRET).seal(PEM, "row")
    with pytest.raises(EnvelopeError):
        Envelope("t" * 40).open(sealed, "row")


@pytest.mark.parametrize(
    "garbage",
    [
        "enc:v1:",
        "enc:v1:AAAA",
        "enc:v1:!!!!:????",
        "enc:v1:AAAAAAAAAAAAAAAA:AAAA",
        "enc:v2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        PEM,
    ],
)
def test_malformed_envelopes_are_refused_not_crashed_on(garbage: str) -> None:
    with pytest.raises(EnvelopeError):
        Envelope(SECRET).open(garbage, "row")


def test_a_flipped_bit_is_detected() -> None:
    box = Envelope(SECRET)
    sealed = box.seal(PEM, "row")
    head, body = sealed.rsplit(":", 1)
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    with pytest.raises(EnvelopeError):
        box.open(f"{head}:{flipped}", "row")
