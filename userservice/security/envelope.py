"""Authenticated encryption of secrets stored in the database (S11).

`enc:v1:<nonce>:<ciphertext>` (unpadded base64url): AES-256-GCM with a random
96-bit nonce per value (NIST SP 800-38D 8.2.2) under a key derived from the
operator's secret with HKDF-SHA256 (RFC 5869). The row a value belongs to is the
associated data, so a ciphertext copied onto another row (a known key's row onto
the active one) fails to open instead of being used. The prefix tells sealed
values from the plaintext rows written before a secret was configured.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc:v1:"
NONCE_BYTES = 12
TAG_BYTES = 16
# Changing the label derives a different key: every stored value would stop opening.
_HKDF_INFO = b"userservice at-rest encryption v1"


class EnvelopeError(ValueError):
    """Malformed, tampered with, bound to another row, or sealed under another secret."""


def is_envelope(value: str) -> bool:
    return value.startswith(PREFIX)


class Envelope:
    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, row: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), row.encode())
        return f"{PREFIX}{_b64(nonce)}:{_b64(sealed)}"

    def open(self, value: str, row: str) -> str:
        if not is_envelope(value):
            raise EnvelopeError("not an encrypted value")
        nonce_text, _, sealed_text = value.removeprefix(PREFIX).partition(":")
        try:
            nonce, sealed = _unb64(nonce_text), _unb64(sealed_text)
        except (binascii.Error, ValueError):
            raise EnvelopeError("malformed encrypted value") from None
        if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise EnvelopeError("malformed encrypted value")
        try:
            return self._aead.decrypt(nonce, sealed, row.encode()).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise EnvelopeError("the value does not open with this secret") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
