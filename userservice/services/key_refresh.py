"""Each serving replica reloads its signing keys every reload interval in the
background, so that signing never reads the database on the event loop and even
an idle replica's copy is at most one interval old (N4): a rotation made through
another replica is published here, and its hand-over seen, before it takes effect."""

from __future__ import annotations

import asyncio
import contextlib

from userservice.services.keys import KeyStore


class KeyRefresher:
    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin the periodic reload on the running event loop."""
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="keys-refresh")

    async def stop(self) -> None:
        """Cancel the task and wait for a reload in progress (one short read)."""
        task = self._task
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            # Started by another lifespan of this app, on its own loop (test clients
            # open side by side): that lifespan stops it.
            return
        self._task = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        keys = self._keys
        while True:
            # Wake when the copy turns stale (a request may have reloaded it meanwhile).
            await asyncio.sleep(max(keys.reload_seconds - keys.age(), 0.0))
            # In a thread: a reload that finds new keys parses them (an RSA key costs
            # about 150 ms of CPU).
            reload = asyncio.ensure_future(asyncio.to_thread(keys.refresh))
            try:
                await asyncio.shield(reload)
            except asyncio.CancelledError:
                # Shutting down: the database is closed only once the read has ended.
                with contextlib.suppress(Exception):
                    await reload
                raise
            if keys.age() >= keys.reload_seconds:
                # The reload failed (logged): the next try one interval on, not at once.
                await asyncio.sleep(keys.reload_seconds)
