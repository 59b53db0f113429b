"""Reading every worker's metrics at once (prometheus_client's multiprocess mode).

Each process writes its values to files named by its pid in PROMETHEUS_MULTIPROC_DIR;
a scrape merges them (O3). Counters and histograms of a worker that died stay in
the sum (its requests happened); its live gauges (pool connections) must not:
a worker stopped cleanly removes them (mark_process_dead in the lifespan), and a
scrape removes those of any pid that no longer runs (a worker killed by the OOM
killer or a signal never ran its shutdown)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from userservice.observability.metrics import MULTIPROC_ENV

_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")
logger = logging.getLogger("userservice.metrics")

# (messages waiting, when the oldest was queued or None)
Backlog = tuple[int, dt.datetime | None]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: not ours to judge
    return True


def forget_dead_processes(directory: str) -> None:
    for entry in Path(directory).iterdir():
        found = _LIVE_FILE.match(entry.name)
        if found is not None and not _running(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(int(found.group(1)), directory)  # type: ignore[no-untyped-call]


class _Pruned:
    """Prunes the dead processes' live gauges, then reads every file."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._files = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        forget_dead_processes(self._directory)
        found: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return found


class OutboxGauges:
    """The mail outbox's depth and age, read from the database at scrape time:
    every process would read the same rows, so one reading is the truth."""

    def __init__(self, read: Callable[[], Backlog]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            waiting, oldest = self._read()
        except Exception as error:  # a scrape still answers with the other series
            logger.warning("cannot read the mail outbox for metrics: %s", type(error).__name__)
            return
        age = 0.0
        if oldest is not None:
            age = max(0.0, (dt.datetime.now(dt.UTC) - oldest).total_seconds())
        yield GaugeMetricFamily(
            "userservice_mail_outbox_messages", "Mails queued and not yet sent.", value=waiting
        )
        yield GaugeMetricFamily(
            "userservice_mail_outbox_oldest_age_seconds",
            "Age of the oldest mail not yet sent (0 when none).",
            value=age,
        )


def scrape_registry(extra: Iterable[Collector], directory: str | None = None) -> CollectorRegistry:
    """A fresh registry for one scrape: the files of every worker plus `extra`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Pruned(directory or os.environ[MULTIPROC_ENV]))
    for collector in extra:
        registry.register(collector)
    return registry


def forget_this_process() -> None:
    """A worker stopping cleanly: its live gauges leave the sum (multiprocess mode)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and os.path.isdir(directory):
        mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
