"""Device cookies (S12; OWASP "Slow Down Online Guessing Attacks with Device
Cookies"): proof that this browser signed in to this account before.

`v1.<user id hex>.<nonce>.<expires>.<mac>`: HMAC-SHA256 over everything before
the MAC, under a key every replica shares. The nonce names the device, so its
failed logins count in a window of its own. Anything that does not parse, is
signed by another key or has expired is no device cookie (None), never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

VERSION = "v1"
NONCE_BYTES = 16
_SHAPE = re.compile(r"v1\.([0-9a-f]{32})\.([A-Za-z0-9_-]{22})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class DeviceClaim:
    user_id: uuid.UUID
    nonce: str
    expires: int  # Unix time


def new_nonce() -> str:
    return _b64(secrets.token_bytes(NONCE_BYTES))


def make_device_cookie(key: bytes, claim: DeviceClaim) -> str:
    body = f"{VERSION}.{claim.user_id.hex}.{claim.nonce}.{claim.expires}"
    return f"{body}.{_mac(key, body)}"


def read_device_cookie(key: bytes, value: str, now: float) -> DeviceClaim | None:
    match = _SHAPE.fullmatch(value)
    if match is None:
        return None
    body, mac = value.rsplit(".", 1)
    # Constant time: a byte-by-byte comparison would let a forger learn the MAC.
    if not hmac.compare_digest(_mac(key, body), mac):
        return None
    expires = int(match[3])
    if expires <= now:
        return None
    return DeviceClaim(uuid.UUID(hex=match[1]), match[2], expires)


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
