"""The signing key ring, loaded from the database and shared by every replica.

Lifecycle of a key (per algorithm, ES256 and RS256):
  active    the newest key with `retired_at IS NULL`; it signs new tokens.
  retiring  `rotate` set its `retired_at`; it no longer signs, but stays in JWKS
            and keeps verifying for `grace` seconds, until every token it signed
            has expired.
  retired   past `retired_at + grace`: gone from JWKS and refused; the next
            `rotate` deletes the row.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from userservice.db.ports import Storage
from userservice.db.signing_keys import (
    NewKey,
    StoredKey,
    load_stored,
    replace_keys,
    reseal_keys,
    save_key,
)
from userservice.security.jwt import (
    LEEWAY_SECONDS,
    SIGNING_ALGORITHMS,
    KeyMaterial,
    KeyRing,
    generate_key,
)
from userservice.services.at_rest import AtRest, AtRestError
from userservice.settings import Settings

# How stale a replica's copy may be when it signs: after another replica rotates,
# this process keeps signing with the old key for at most this long.
RELOAD_INTERVAL_SECONDS = 60.0
# An unknown kid reloads at most this often, so garbage kids cannot hammer the database.
UNKNOWN_KID_RELOAD_SECONDS = 5.0
# Without settings (serve's pre-fork ensure, test templates): the longest token
# lifetime the settings allow, so nothing computed from it retires a key too early.
_LONGEST_TTL_SECONDS = 86400

log = logging.getLogger("userservice.keys")

KeyState = Literal["active", "retiring", "retired"]


def grace_seconds(max_token_ttl: float, reload_seconds: float) -> float:
    """How long a retired key must keep verifying. The last token it signed may be
    issued up to `reload_seconds` after `retired_at` (a replica that has not reloaded
    yet), lives `max_token_ttl`, and is accepted `LEEWAY_SECONDS` past its `exp`."""
    return max_token_ttl + reload_seconds + LEEWAY_SECONDS


def settings_grace_seconds(settings: Settings) -> float:
    longest = max(settings.access_token_ttl_seconds, settings.id_token_ttl_seconds)
    return grace_seconds(longest, settings.signing_key_reload_seconds)


def verify_until(key: StoredKey, grace: float) -> dt.datetime | None:
    if key.retired_at is None:
        return None
    return key.retired_at + dt.timedelta(seconds=grace)


def key_state(key: StoredKey, now: dt.datetime, grace: float) -> KeyState:
    until = verify_until(key, grace)
    if until is None:
        return "active"
    return "retiring" if now < until else "retired"


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    alg: str
    created_at: dt.datetime
    state: KeyState
    # End of verification for a retiring or retired key.
    until: dt.datetime | None


@dataclass(frozen=True)
class Rotation:
    created: list[tuple[str, str]]  # (kid, alg)
    retired: list[str]
    removed: list[str]
    retiring_until: dt.datetime


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _row_name(kid: str) -> str:
    # The envelope's associated data: a sealed key opens only on its own row (S11).
    return f"signing key {kid}"


def _material(key: StoredKey, grace: float, at_rest: AtRest) -> KeyMaterial:
    until = verify_until(key, grace)
    return KeyMaterial(
        kid=key.kid,
        alg=key.alg,
        private_pem=at_rest.reveal(key.private_pem, _row_name(key.kid)),
        retired=until is not None,
        verify_until=until.timestamp() if until is not None else None,
    )


class KeyStore:
    def __init__(
        self,
        db: Storage,
        *,
        grace_seconds: float = grace_seconds(_LONGEST_TTL_SECONDS, RELOAD_INTERVAL_SECONDS),
        reload_seconds: float = RELOAD_INTERVAL_SECONDS,
        at_rest: AtRest | None = None,
    ) -> None:
        self._db = db
        self._at_rest = at_rest or AtRest()
        self.grace_seconds = grace_seconds
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._background = threading.Lock()  # held while a background reload runs
        self._ring = KeyRing([])
        self._loaded_at = -math.inf
        self._kid_reload_at = -math.inf

    @classmethod
    def for_settings(cls, db: Storage, settings: Settings) -> KeyStore:
        return cls(
            db,
            grace_seconds=settings_grace_seconds(settings),
            reload_seconds=settings.signing_key_reload_seconds,
            at_rest=AtRest.for_settings(settings),
        )

    @property
    def ring(self) -> KeyRing:
        """The ring as last loaded, for verification and JWKS on the event loop: never
        waits for the database. A stale copy is refreshed by a background thread, so a
        replica that only verifies still learns of rotations and retirements (and
        a key's grace ends inside the ring on time regardless)."""
        if time.monotonic() - self._loaded_at >= self.reload_seconds:
            self._refresh_in_background()
        return self._ring

    def _refresh_in_background(self) -> None:
        if not self._background.acquire(blocking=False):
            return  # one already running
        try:
            threading.Thread(target=self._background_load, name="keys-reload", daemon=True).start()
        except BaseException:
            self._background.release()
            raise

    def _background_load(self) -> None:
        try:
            self.load()
        except Exception as exc:  # keep serving the copy we have
            log.warning("signing key reload failed: %s", type(exc).__name__)
        finally:
            self._background.release()

    def load(self) -> KeyRing:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> KeyRing:
        stored = load_stored(self._db)
        self._ring = KeyRing([_material(k, self.grace_seconds, self._at_rest) for k in stored])
        self._loaded_at = time.monotonic()
        return self._ring

    def _reload_locked(self) -> KeyRing:
        """A reload while serving: a stored key that does not open (a row written
        under another secret) keeps the ring we have rather than failing every
        request; start-up and rotation still stop on it (ensure, rotate)."""
        try:
            return self._load_locked()
        except AtRestError:
            log.error("signing keys not reloaded: a stored key does not open with this secret")
            self._loaded_at = time.monotonic()
            return self._ring

    def ensure(self) -> KeyRing:
        """Create a key for each algorithm we sign with, if there is none yet, and
        seal keys stored before an at-rest secret was configured. Raises AtRestError
        when a stored key does not open: never new keys in place of unreadable ones."""
        ring = self.load()
        self._seal_plaintext()
        now = _utcnow()
        missing = [alg for alg in SIGNING_ALGORITHMS if not ring.has_signing_key(alg)]
        for alg in missing:
            save_key(self._db, self._new_key(alg), now)
        return self.load() if missing else ring

    def _new_key(self, alg: str) -> NewKey:
        material = generate_key(alg, _new_kid())
        stored = self._at_rest.protect(material.private_pem, _row_name(material.kid))
        return NewKey(material.kid, alg, stored)

    def _seal_plaintext(self) -> None:
        changes = {
            k.kid: (k.private_pem, self._at_rest.protect(k.private_pem, _row_name(k.kid)))
            for k in load_stored(self._db)
            if self._at_rest.needs_sealing(k.private_pem)
        }
        if changes:
            reseal_keys(self._db, changes)
            log.info("encrypted %d signing keys stored in plaintext", len(changes))

    def signing_ring(self) -> KeyRing:
        """The ring, reloaded first if older than the reload interval, so this process
        stops signing with a key another replica retired. Called from worker threads
        (token issuance), never from the event loop; a fresh copy costs one clock read."""
        if time.monotonic() - self._loaded_at >= self.reload_seconds:
            with self._lock:
                # Another thread may have reloaded while we waited for the lock.
                if time.monotonic() - self._loaded_at >= self.reload_seconds:
                    self._reload_locked()
        return self._ring

    def sign(self, claims: Mapping[str, Any], alg: str, typ: str) -> str:
        return self.signing_ring().sign(claims, alg, typ)

    def maybe_reload_for(self, kid: str) -> bool:
        """A kid we do not know may have been created by another replica's rotation.
        The first miss reloads at once (so a fresh key verifies everywhere right
        away); further misses at most every few seconds, so garbage kids cannot
        hammer the database."""
        if self._ring.knows(kid):
            return True
        with self._lock:
            if self._ring.knows(kid):  # reloaded by a concurrent request
                return True
            clock = time.monotonic()
            if clock - self._kid_reload_at < UNKNOWN_KID_RELOAD_SECONDS:
                return False
            self._kid_reload_at = clock
            return self._reload_locked().knows(kid)

    def rotate(self, now: dt.datetime | None = None) -> Rotation:
        """Add a new key per algorithm, retire the previous ones (they keep verifying
        through their grace) and delete keys whose grace has passed."""
        at = now or _utcnow()
        self.load()  # a key that does not open stops the rotation before any change
        new = [self._new_key(alg) for alg in SIGNING_ALGORITHMS]
        cutoff = at - dt.timedelta(seconds=self.grace_seconds)
        retired, removed = replace_keys(self._db, new, at, cutoff)
        self.load()
        return Rotation(
            created=[(k.kid, k.alg) for k in new],
            retired=retired,
            removed=removed,
            retiring_until=at + dt.timedelta(seconds=self.grace_seconds),
        )

    def describe(self, now: dt.datetime | None = None) -> list[KeyInfo]:
        at = now or _utcnow()
        return [
            KeyInfo(
                kid=k.kid,
                alg=k.alg,
                created_at=k.created_at,
                state=key_state(k, at, self.grace_seconds),
                until=verify_until(k, self.grace_seconds),
            )
            for k in load_stored(self._db)
        ]


def _new_kid() -> str:
    return secrets.token_urlsafe(12)
