"""Device cookies for the hosted sign-in page (S12): issued after a successful
browser login, and read back to give that browser a failure window of its own.

The signing key is a server secret in the database, so every replica accepts
every other's cookies; it is sealed at rest like the signing keys (S11).
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
import uuid

from userservice.db.ports import Storage
from userservice.db.server_secrets import get_or_create, replace_value
from userservice.security.device_cookie import (
    DeviceClaim,
    make_device_cookie,
    new_nonce,
    read_device_cookie,
)
from userservice.services.at_rest import AtRest

KEY_NAME = "device_cookie_key"
# OWASP suggests a long life: the cookie only ever widens the owner's own budget.
LIFETIME_SECONDS = 365 * 86400
MAX_COOKIE_LENGTH = 256

log = logging.getLogger("userservice.devices")


class DeviceCookies:
    def __init__(self, db: Storage, at_rest: AtRest) -> None:
        self._db = db
        self._at_rest = at_rest
        self._key: bytes | None = None

    def ensure(self) -> None:
        """Load the shared key, creating it on first start. At start-up (not on the
        event loop): a key that does not open stops the start (AtRestError)."""
        row = f"server secret {KEY_NAME}"
        fresh = self._at_rest.protect(_b64(secrets.token_bytes(32)), row)
        stored = get_or_create(self._db, KEY_NAME, fresh)
        key = self._at_rest.reveal(stored, row)
        if self._at_rest.needs_sealing(stored):
            replace_value(self._db, KEY_NAME, stored, self._at_rest.protect(key, row))
            log.info("encrypted the server secret %s stored in plaintext", KEY_NAME)
        self._key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))

    def read(self, value: str | None) -> DeviceClaim | None:
        """The device this cookie proves, or None for no, a forged, an expired or a
        garbage cookie."""
        if not value or self._key is None or len(value) > MAX_COOKIE_LENGTH:
            return None
        return read_device_cookie(self._key, value, time.time())

    def issue(self, user_id: uuid.UUID, presented: DeviceClaim | None) -> str | None:
        """The cookie to set after `user_id` signed in: the same device (nonce) when
        the browser already proved one for this account, with a fresh expiry."""
        if self._key is None:
            return None
        nonce = presented.nonce if presented and presented.user_id == user_id else new_nonce()
        expires = int(time.time()) + LIFETIME_SECONDS
        return make_device_cookie(self._key, DeviceClaim(user_id, nonce, expires))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
