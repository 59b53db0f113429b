"""argon2id password hashing through passlib, bounded to the machine's cores.

Argon2 is memory-hard: letting FastAPI's 40 threadpool workers hash at once
costs RSS (m x threads) and throughput (cache thrash). Hashes run on a small
pool of their own, about one thread per core, whichever thread asks for them.

Why a pool and not only a limit on concurrent hashes: glibc gives each thread
its own malloc arena, and after the first 19 MiB buffer is freed its dynamic mmap
threshold rises above that size, so later buffers come from the arena and stay
resident. With a semaphore alone, every one of the 40 threads that ever hashed
kept ~19 MiB: ~0.5 GB RSS per worker in a login storm (bench's storm-login).
With the pool, only its few threads ever allocate argon2 memory, and they reuse it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from passlib.context import CryptContext


def normalize_password(password: str) -> str:
    # NIST SP 800-63B §5.1.1.2: normalize Unicode so the same password typed on
    # different keyboards/OSes hashes the same. No truncation anywhere.
    return unicodedata.normalize("NFKC", password)


T = TypeVar("T")

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


def _upgrade(outcome: tuple[object, object], stored: str) -> tuple[bool, str | None]:
    ok, new_hash = outcome
    if not isinstance(new_hash, str) or not _stronger(new_hash, stored):
        # During a rolling upgrade an old replica must not weaken new hashes.
        new_hash = None
    return bool(ok), new_hash


class PasswordHasher:
    def __init__(
        self,
        memory_kib: int,
        time_cost: int,
        parallelism: int,
        max_concurrent: int = 0,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=memory_kib,
            argon2__rounds=time_cost,
            argon2__parallelism=parallelism,
        )
        self._threads = max_concurrent or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()
        # Told how long each hash waited for a pool thread (the metrics' queue time).
        self._on_wait = on_wait

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                # Made on first use, in the process that hashes (never at import).
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="argon2")
            return self._pool

    def _timed(self, work: Callable[[], T]) -> Callable[[], T]:
        on_wait = self._on_wait
        if on_wait is None:
            return work
        queued = time.perf_counter()

        def started() -> T:
            on_wait(time.perf_counter() - queued)
            return work()

        return started

    def _on_pool(self, work: Callable[[], T], timeout: float | None = None) -> T:
        future = self._executor().submit(self._timed(work))
        try:
            return future.result(timeout)
        except BaseException:
            # A caller that stops waiting (TimeoutError) takes its hash off the queue
            # if it has not started: in a flood the pool hashes only for callers
            # still waiting for the answer.
            future.cancel()
            raise

    async def _on_pool_async(self, work: Callable[[], T]) -> T:
        # Straight from the event loop to the pool: one thread hand-off per hash,
        # not two (a threadpool thread that would only wait for the pool). A
        # cancelled caller cancels the pool's future: a hash not yet started never runs.
        return await asyncio.get_running_loop().run_in_executor(self._executor(), self._timed(work))

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def hash(self, password: str) -> str:
        normalized = normalize_password(password)
        return str(self._on_pool(lambda: self._context.hash(normalized)))

    def verify(
        self, password: str, password_hash: str, timeout: float | None = None
    ) -> tuple[bool, str | None]:
        """Return (matches, new_hash); new_hash is set when our parameters are
        stronger than the stored hash's. TimeoutError after `timeout` seconds
        (queued and hashing), the hash taken off the queue if not yet started."""
        normalized = normalize_password(password)
        return _upgrade(
            self._on_pool(
                lambda: self._context.verify_and_update(normalized, password_hash), timeout
            ),
            password_hash,
        )

    async def verify_async(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """verify() for the event loop: the loop waits, the pool hashes."""
        normalized = normalize_password(password)
        return _upgrade(
            await self._on_pool_async(
                lambda: self._context.verify_and_update(normalized, password_hash)
            ),
            password_hash,
        )

    async def verify_dummy_async(self, password: str) -> None:
        """Spend the same time as a real verify, so unknown accounts cannot be told
        apart from wrong passwords by timing (OWASP ASVS V2.2)."""
        dummy = self._dummy_hash
        if dummy is None:
            dummy = await self._on_pool_async(self._make_dummy)
        await self.verify_async(password, dummy)

    def _make_dummy(self) -> str:
        # On a pool thread, once per process: the first callers wait here, on the
        # pool, never on the event loop or the shared threadpool.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = str(self._context.hash(secrets.token_urlsafe(16)))
            return self._dummy_hash
