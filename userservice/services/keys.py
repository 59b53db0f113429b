"""The signing key ring, loaded from the database and shared by every replica.

Lifecycle of a key (per algorithm, ES256 and RS256):
  pending   created by `rotate` and published in JWKS at once, but not signing yet:
            the key before it keeps signing until relying parties that cached the
            JWKS have had time to fetch it (N4).
  active    signing new tokens: the oldest key whose `retired_at` is unset or still
            in the future. The very first keys of an empty store sign at once.
  retiring  past its `retired_at` (the moment its successor took over): it no longer
            signs, but stays in JWKS and keeps verifying for `grace` seconds, until
            every token it signed has expired (N5).
  retired   past `retired_at + grace`: gone from JWKS and refused; the next
            `rotate` deletes the row.
A rotation sets `retired_at` of the signing key (and of a still pending one) to
`now + publication`, where publication = the JWKS cache lifetime + the reload
interval + the verification leeway: every replica publishes the new key within one
reload interval, and a JWKS cached before that has expired by the time the new key
signs. Signing never reads the database: each replica's copy is kept fresh in the
background (services/key_refresh.py), so a request never waits for a reload.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from userservice.db.ports import Storage
from userservice.db.signing_keys import (
    NewKey,
    StoredKey,
    load_stored,
    lock_keys,
    replace_keys,
    reseal_keys,
    save_key,
)
from userservice.security.jwt import SIGNING_ALGORITHMS, KeyRing
from userservice.services.at_rest import AtRest, AtRestError
from userservice.services.key_rows import audit_rotation, material, new_key, row_name
from userservice.services.key_schedule import (
    KeyInfo,
    describe_keys,
    grace_seconds,
    publication_seconds,
    settings_grace_seconds,
)
from userservice.settings import Settings

# How stale a replica's copy may be: a key rotated in through another replica is
# published here, and a hand-over seen, at most this long after (measured: one
# reload of an unchanged ring is a single indexed read of a few rows).
RELOAD_INTERVAL_SECONDS = 5.0
# How long relying parties may cache our JWKS (the header's max-age).
JWKS_MAX_AGE_SECONDS = 300
# An unknown kid reloads at most this often, so garbage kids cannot hammer the database.
UNKNOWN_KID_RELOAD_SECONDS = 5.0
# Without settings (serve's pre-fork ensure, test templates): the longest token
# lifetime the settings allow, so nothing computed from it retires a key too early.
_LONGEST_TTL_SECONDS = 86400

log = logging.getLogger("userservice.keys")


@dataclass(frozen=True)
class Rotation:
    created: list[KeyInfo]
    # Keys that stop signing when the new ones start (their `signs_until`).
    retired: list[KeyInfo]
    removed: list[str]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class KeyStore:
    def __init__(
        self,
        db: Storage,
        *,
        grace_seconds: float = grace_seconds(_LONGEST_TTL_SECONDS, RELOAD_INTERVAL_SECONDS),
        reload_seconds: float = RELOAD_INTERVAL_SECONDS,
        publication_seconds: float = publication_seconds(
            JWKS_MAX_AGE_SECONDS, RELOAD_INTERVAL_SECONDS
        ),
        at_rest: AtRest | None = None,
    ) -> None:
        self._db = db
        self._at_rest = at_rest or AtRest()
        self.grace_seconds = grace_seconds
        self.reload_seconds = reload_seconds
        self.publication_seconds = publication_seconds
        self._lock = threading.Lock()
        self._background = threading.Lock()  # held while a background reload runs
        self._ring = KeyRing([])
        self._stored: tuple[StoredKey, ...] | None = None
        self._loaded_at = -math.inf
        self._kid_reload_at = -math.inf

    @classmethod
    def for_settings(cls, db: Storage, settings: Settings) -> KeyStore:
        reload = settings.signing_key_reload_seconds
        return cls(
            db,
            grace_seconds=settings_grace_seconds(settings),
            reload_seconds=reload,
            publication_seconds=publication_seconds(settings.jwks_max_age_seconds, reload),
            at_rest=AtRest.for_settings(settings),
        )

    def age(self) -> float:
        """Seconds since the copy was last loaded (infinite before the first load)."""
        return time.monotonic() - self._loaded_at

    def _stale(self) -> bool:
        return self.age() >= self.reload_seconds

    @property
    def cached(self) -> KeyRing:
        """The ring as last loaded, and nothing else."""
        return self._ring

    @property
    def ring(self) -> KeyRing:
        """The ring as last loaded, for signing and verification on the event loop:
        never waits for the database. The serving app reloads it every interval
        (services/key_refresh.py); a copy found stale anyway (embedded use without
        that task) is refreshed by a background thread (and a key's grace and
        hand-over end inside the ring on time regardless)."""
        if self._stale():
            self._refresh_in_background()
        return self._ring

    async def published(self) -> KeyRing:
        """The ring for JWKS: never older than the reload interval, so that a JWKS
        served later than that after a rotation carries the new keys (N4: relying
        parties may cache it for the whole max-age). A reload that fails serves the
        copy we have: a JWKS missing is worse than one a few seconds old."""
        if not self._stale():
            return self._ring
        try:
            # Always in a thread, even on SQLite: a reload that finds new keys parses
            # them (an RSA key costs about 150 ms of CPU).
            return await anyio.to_thread.run_sync(self._reload_if_stale)
        except Exception as exc:
            log.warning("signing key reload for JWKS failed: %s", type(exc).__name__)
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
            self._reload_quietly()
        finally:
            self._background.release()

    def refresh(self) -> None:
        """Reload if stale, blocking (from a worker thread): one reload at a time with
        the request-triggered one, and never raising (the copy we have serves on)."""
        with self._background:
            self._reload_quietly()

    def _reload_quietly(self) -> None:
        try:
            self._reload_if_stale()
        except Exception as exc:
            log.warning("signing key reload failed: %s", type(exc).__name__)

    def load(self) -> KeyRing:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> KeyRing:
        stored = tuple(load_stored(self._db))
        # Unchanged rows keep the ring (and its verified-token cache): a reload every
        # few seconds then costs one read, not the parsing of every private key.
        if stored != self._stored:
            materials = [material(k, self.grace_seconds, self._at_rest) for k in stored]
            self._ring = KeyRing(materials, reuse=self._ring)
            self._stored = stored
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
        when a stored key does not open: never new keys in place of unreadable ones.
        A key created here has no key before it still signing: it signs at once."""
        ring = self.load()
        self._seal_plaintext()
        now = _utcnow()
        missing = [alg for alg in SIGNING_ALGORITHMS if not ring.has_signing_key(alg)]
        for alg in missing:
            save_key(self._db, self._new_key(alg), now)
        return self.load() if missing else ring

    def _new_key(self, alg: str) -> NewKey:
        return new_key(alg, self._at_rest)

    def _seal_plaintext(self) -> None:
        changes = {
            k.kid: (k.private_pem, self._at_rest.protect(k.private_pem, row_name(k.kid)))
            for k in load_stored(self._db)
            if self._at_rest.needs_sealing(k.private_pem)
        }
        if changes:
            reseal_keys(self._db, changes)
            log.info("encrypted %d signing keys stored in plaintext", len(changes))

    def _reload_if_stale(self) -> KeyRing:
        if self._stale():
            with self._lock:
                # Another thread may have reloaded while we waited for the lock.
                if self._stale():
                    self._reload_locked()
        return self._ring

    def sign(self, claims: Mapping[str, Any], alg: str, typ: str) -> str:
        """Signs with the copy we have, on the calling thread without any database
        read (token issuance runs on the event loop): the copy is at most one reload
        interval old, and a rotation hands over only after that (N4)."""
        return self.ring.sign(claims, alg, typ)

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

    def rotate(
        self,
        now: dt.datetime | None = None,
        *,
        actor: uuid.UUID | str | None = None,
        ip: str | None = None,
    ) -> Rotation:
        """Add a new key per algorithm, published at once; the keys signing now (or
        waiting to) hand over `publication_seconds` later and then verify through
        their grace; keys whose grace has passed are deleted. With no key before it,
        a new key signs at once. Audited (`actor`: an administrator's id, or the
        name of the tool)."""
        self.load()  # a key that does not open stops the rotation before any change
        new = [self._new_key(alg) for alg in SIGNING_ALGORITHMS]
        with self._db.unit_of_work() as uow:
            lock_keys(uow, SIGNING_ALGORITHMS)
            # Taken once the rotation holds the keys (after the slow key generation, a
            # wait for a connection or the writer, or behind a concurrent rotation),
            # so the publication delay counts from just before the commit (N4).
            at = now or _utcnow()
            hand_over = at + dt.timedelta(seconds=self.publication_seconds)
            cutoff = at - dt.timedelta(seconds=self.grace_seconds)
            retired, removed = replace_keys(uow, new, at, hand_over, cutoff)
            # Stored with the rotation itself: there is no rotation without its event.
            audit_rotation(uow, actor, ip, new, hand_over if retired else at)
        self.load()
        infos = {k.kid: k for k in self.describe(now=at)}
        return Rotation(
            created=[infos[k.kid] for k in new],
            retired=[infos[kid] for kid in retired if kid in infos],
            removed=removed,
        )

    def describe(self, now: dt.datetime | None = None) -> list[KeyInfo]:
        return describe_keys(load_stored(self._db), now or _utcnow(), self.grace_seconds)
