"""Pruning inside the service: one replica at a time deletes what has expired,
every `prune_interval_seconds` (services/retention.py says what)."""

from __future__ import annotations

from userservice.db.ports import Storage
from userservice.settings import Settings


class BackgroundPruner:
    def __init__(self, db: Storage, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    def start(self) -> None:
        """Begin the periodic task on the running event loop (a no-op when the
        interval is 0)."""

    async def stop(self) -> None:
        """Cancel the task and wait for a pass in progress to end."""
