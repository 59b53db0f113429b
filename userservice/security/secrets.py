"""Opaque secrets (refresh tokens, client secrets): random, stored as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(nbytes: int = 32) -> str:
    # 256 bits from the OS CSPRNG (RFC 9700 §4.14: refresh tokens unguessable).
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    # High-entropy secrets need no slow hash: SHA-256 makes a leaked table useless.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(token: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(token), expected_digest)
