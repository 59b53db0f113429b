"""Pruning inside the service: one replica at a time deletes what has expired,
every `prune_interval_seconds` (services/retention.py says what)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading

from userservice.db.ports import Storage
from userservice.services.retention import prune_expired
from userservice.settings import Settings

log = logging.getLogger("userservice.pruning")
# Each wait is the interval times a factor drawn from this range: replicas started
# together (a deployment) drift apart instead of all asking for the turn at once.
JITTER = (0.8, 1.2)


class BackgroundPruner:
    def __init__(self, db: Storage, settings: Settings) -> None:
        self._db = db
        self._interval = settings.prune_interval_seconds
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._random = random.Random()  # noqa: S311 (spreading timers, not a secret)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin the periodic task on the running event loop (a no-op when the
        interval is 0)."""
        if self._interval <= 0 or self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pruner")

    async def stop(self) -> None:
        """Cancel the task and wait for a pass in progress to end (within one batch)."""
        task = self._task
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            # Started by another lifespan of this app, on its own loop (test clients
            # open side by side): that lifespan stops it.
            return
        self._task = None
        self._stopping.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval * self._random.uniform(*JITTER))
            await self.run_once()

    async def run_once(self) -> dict[str, int] | None:
        """One pass, in a thread (its SQL is blocking): the counts, or None when
        another replica had the turn or the pass failed (then the next interval
        tries again)."""
        passing = asyncio.ensure_future(
            asyncio.to_thread(
                prune_expired, self._db, self._settings, stopping=self._stopping.is_set
            )
        )
        try:
            counts = await asyncio.shield(passing)
        except asyncio.CancelledError:
            # Shutting down: the thread sees _stopping after its current batch; the
            # database is closed only once it has let go.
            with contextlib.suppress(Exception):
                await passing
            raise
        except Exception as exc:  # the database down or refusing: try again later
            log.warning("pruning failed, retrying in %d s: %s", self._interval, _brief(exc))
            return None
        if counts is None:
            log.info("pruning skipped: another process is pruning")
        else:
            deleted = ", ".join(f"{kind} {count}" for kind, count in counts.items())
            log.info("pruned: %s", deleted)
        return counts


def _brief(exc: Exception) -> str:
    # The exception's class and first line: a statement with its parameters may
    # follow, and those can be personal data.
    first = str(getattr(exc, "orig", None) or exc).splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"
