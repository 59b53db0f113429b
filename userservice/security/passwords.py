"""argon2id password hashing through passlib, bounded to the machine's cores.

Argon2 is memory-hard: letting FastAPI's 40 threadpool workers hash at once
costs RSS (m x threads) and throughput (cache thrash). A semaphore holds the
number of hashes in flight to about one per core.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import unicodedata

from passlib.context import CryptContext


def normalize_password(password: str) -> str:
    # NIST SP 800-63B §5.1.1.2: normalize Unicode so the same password typed on
    # different keyboards/OSes hashes the same. No truncation anywhere.
    return unicodedata.normalize("NFKC", password)


_ARGON2_PARAMS = re.compile(r"\$m=(\d+),t=(\d+),p=(\d+)\$")


def _stronger(candidate: str, current: str) -> bool:
    new, old = _ARGON2_PARAMS.search(candidate), _ARGON2_PARAMS.search(current)
    if new is None or old is None:
        return True  # not an argon2 hash we understand: replace it
    (m_new, t_new, p_new), (m_old, t_old, p_old) = (
        tuple(int(v) for v in match.groups()) for match in (new, old)
    )
    changed = (m_new, t_new, p_new) != (m_old, t_old, p_old)
    return changed and m_new >= m_old and t_new >= t_old


class PasswordHasher:
    def __init__(
        self, memory_kib: int, time_cost: int, parallelism: int, max_concurrent: int = 0
    ) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=memory_kib,
            argon2__rounds=time_cost,
            argon2__parallelism=parallelism,
        )
        self._slots = threading.BoundedSemaphore(max_concurrent or os.cpu_count() or 1)
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._slots:
            return str(self._context.hash(normalize_password(password)))

    def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Return (matches, new_hash); new_hash is set when our parameters are
        stronger than the stored hash's."""
        with self._slots:
            ok, new_hash = self._context.verify_and_update(
                normalize_password(password), password_hash
            )
        if new_hash is not None and not _stronger(new_hash, password_hash):
            # During a rolling upgrade an old replica must not weaken new hashes.
            new_hash = None
        return bool(ok), new_hash

    def verify_dummy(self, password: str) -> None:
        """Spend the same time as a real verify, so unknown accounts cannot be told
        apart from wrong passwords by timing (OWASP ASVS V2.2)."""
        self.verify(password, self._dummy())

    def _dummy(self) -> str:
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(secrets.token_urlsafe(16))
            return self._dummy_hash
