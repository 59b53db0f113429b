"""Stateless WebAuthn challenges (M9): a page that offers a passkey ceremony
writes nothing, yet every challenge is bound to its purpose and account, expires,
and (through db/passkeys.spend_challenge) is answered at most once.

    challenge = nonce(16) ‖ expires(8, big-endian unix seconds)
                ‖ HMAC-SHA256(key, purpose ‖ binding ‖ nonce ‖ expires)

WebAuthn L2 §13.4.3 asks for at least 16 random bytes per challenge; the nonce is
that, and the MAC makes the rest unforgeable without the server key."""

from __future__ import annotations

import hashlib
import hmac
import secrets

REGISTER = "register"
SIGN_IN = "sign-in"
SECOND_FACTOR = "second-factor"
# A signed-in page asking for the second factor again (M7: the address change).
CONFIRM = "confirm"
PURPOSES = (REGISTER, SIGN_IN, SECOND_FACTOR, CONFIRM)

NONCE_BYTES = 16
EXPIRY_BYTES = 8
MAC_BYTES = 32
LENGTH = NONCE_BYTES + EXPIRY_BYTES + MAC_BYTES


def _mac(key: bytes, purpose: str, binding: str, nonce: bytes, expires: bytes) -> bytes:
    # Length-prefixed fields: "sign-in" + "x" can never collide with "sign-inx" + "".
    message = b"".join(
        len(part).to_bytes(2, "big") + part
        for part in (purpose.encode(), binding.encode(), nonce, expires)
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def mint(key: bytes, purpose: str, binding: str, now: float, ttl: int) -> bytes:
    """A new challenge for `purpose`, bound to `binding` (a user id, with a
    half-login's digest during a forced enrolment; a half-login's or a session's
    digest; or "" for a passwordless sign-in), good until now + ttl."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown challenge purpose {purpose!r}")
    nonce = secrets.token_bytes(NONCE_BYTES)
    expires = int(now + ttl).to_bytes(EXPIRY_BYTES, "big")
    return nonce + expires + _mac(key, purpose, binding, nonce, expires)


def check(key: bytes, challenge: bytes, purpose: str, binding: str, now: float) -> int | None:
    """The challenge's expiry (unix seconds) when this server minted it for this
    purpose and binding and it has not expired; None otherwise. Whether it was
    answered before is the database's question (spend_challenge)."""
    if len(challenge) != LENGTH or purpose not in PURPOSES:
        return None
    nonce = challenge[:NONCE_BYTES]
    expires = challenge[NONCE_BYTES : NONCE_BYTES + EXPIRY_BYTES]
    mac = challenge[NONCE_BYTES + EXPIRY_BYTES :]
    if not hmac.compare_digest(mac, _mac(key, purpose, binding, nonce, expires)):
        return None
    expiry = int.from_bytes(expires, "big")
    return expiry if now < expiry else None


def digest(challenge: bytes) -> str:
    """What spent_challenges stores: SHA-256 hex of the challenge bytes."""
    return hashlib.sha256(challenge).hexdigest()
