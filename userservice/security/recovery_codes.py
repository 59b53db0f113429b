"""Recovery codes (M2): ten single-use codes of 80 random bits, shown once and
stored only as SHA-256 digests.

80 bits from the OS CSPRNG cannot be guessed online (and the second step is
throttled besides), so a fast digest is enough: a leaked table gives no code,
as for refresh tokens (a slow hash would only cost each sign-in time).
Written as 16 lowercase base32 characters in four groups (`abcd-efgh-ijkl-mnop`):
no 0/1/8/9, which read like O/I/B/g, and easy to copy from paper."""

from __future__ import annotations

import base64
import hashlib
import secrets

COUNT = 10
BITS = 80
_GROUP = 4
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")  # RFC 4648 §6, lowercased


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(BITS // 8)).decode("ascii").lower()
    return "-".join(raw[i : i + _GROUP] for i in range(0, len(raw), _GROUP))


def new_codes(count: int = COUNT) -> list[str]:
    return [new_code() for _ in range(count)]


def normalized(code: str) -> str:
    """As typed: case, spaces and dashes do not matter."""
    return "".join(code.lower().split()).replace("-", "")


def looks_like_code(code: str) -> bool:
    compact = normalized(code)
    return len(compact) == BITS // 5 and all(ch in _ALPHABET for ch in compact)


def code_digest(code: str) -> str:
    """The SHA-256 (hex) of the normalized code: what is stored and looked up."""
    return hashlib.sha256(normalized(code).encode("ascii", "replace")).hexdigest()
