"""Which stored secrets are encrypted, and what a failure to open one means (S11).

With `USERSERVICE_KEY_ENCRYPTION_SECRET` set, private signing keys and the shared
server secrets are written sealed (security/envelope.py); rows written before the
secret was set stay readable and are sealed at the next start. A sealed row that
does not open stops the service with one line for the operator, rather than
serving with, or silently replacing, keys it cannot read.
"""

from __future__ import annotations

from userservice.security.envelope import Envelope, EnvelopeError, is_envelope
from userservice.settings import Settings

SETTING = "USERSERVICE_KEY_ENCRYPTION_SECRET"


class AtRestError(Exception):
    """A stored secret that cannot be read with the configured secret: one line
    for the operator (the CLI exits 2 with it)."""


class AtRest:
    def __init__(self, secret: str | None = None) -> None:
        self._envelope = Envelope(secret) if secret else None

    @classmethod
    def for_settings(cls, settings: Settings) -> AtRest:
        secret = settings.key_encryption_secret
        return cls(secret.get_secret_value() if secret is not None else None)

    def needs_sealing(self, stored: str) -> bool:
        return self._envelope is not None and not is_envelope(stored)

    def protect(self, value: str, row: str) -> str:
        return self._envelope.seal(value, row) if self._envelope is not None else value

    def reveal(self, stored: str, row: str) -> str:
        if not is_envelope(stored):
            return stored  # written before a secret was configured
        if self._envelope is None:
            raise AtRestError(f"{row} is encrypted, but {SETTING} is not set")
        try:
            return self._envelope.open(stored, row)
        except EnvelopeError:
            raise AtRestError(
                f"{row} cannot be decrypted: {SETTING} is not the secret it was encrypted with"
            ) from None
