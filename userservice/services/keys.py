"""The signing key ring, loaded from the database and shared by every replica."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time

from sqlalchemy import Engine

from userservice.db.signing_keys import load_keys, save_key
from userservice.security.jwt import SIGNING_ALGORITHMS, KeyRing, generate_key

RELOAD_INTERVAL_SECONDS = 5.0


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._ring = KeyRing([])
        self._loaded_at = 0.0

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def load(self) -> KeyRing:
        with self._lock:
            self._ring = KeyRing(load_keys(self._engine))
            self._loaded_at = time.monotonic()
            return self._ring

    def ensure(self) -> KeyRing:
        """Create a key for each algorithm we sign with, if there is none yet."""
        ring = self.load()
        now = dt.datetime.now(dt.UTC)
        missing = [alg for alg in SIGNING_ALGORITHMS if not ring.has_signing_key(alg)]
        for alg in missing:
            save_key(self._engine, generate_key(alg, secrets.token_urlsafe(12)), now)
        return self.load() if missing else ring

    def maybe_reload_for(self, kid: str) -> bool:
        """A kid we do not know may have been created by another replica's rotation.
        Reload at most every few seconds so garbage kids cannot hammer the database."""
        if self._ring.knows(kid):
            return False
        if time.monotonic() - self._loaded_at < RELOAD_INTERVAL_SECONDS:
            return False
        self.load()
        return self._ring.knows(kid)
