"""How `serve` exposes the metrics of all its workers (multiprocess mode).

prometheus_client chooses where values live (process memory or per-process files)
when its `values` module is first imported, from PROMETHEUS_MULTIPROC_DIR. So this
module imports nothing of it at load time: the directory is set first, and only
then is anything imported that loads prometheus_client, in this process (which
runs the application itself with one worker) and in the workers it spawns."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from userservice.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SCRAPE_DB_SECONDS = 5.0


class MetricsPortError(RuntimeError):
    """The metrics port cannot be served (taken, or an address not ours)."""


@contextmanager
def serving_metrics(settings: Settings) -> Iterator[None]:
    """Around uvicorn's run: prepares the workers' shared metrics directory and
    serves the metrics port while the server runs."""
    if settings.metrics_port is None and settings.metrics_token is None:
        # Metrics off (observability/prometheus.py metrics_for): nothing to share.
        yield
        return
    # Fresh at every start (O3: no counts carried over from a previous run), private
    # (0700: mkdtemp), and in TMPDIR: the data directory may be read-only.
    directory = tempfile.mkdtemp(prefix="userservice-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        with ExitStack() as stack:
            if settings.metrics_port is not None:
                stack.enter_context(_metrics_port(settings, settings.metrics_port, directory))
            yield
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _metrics_port(settings: Settings, port: int, directory: str) -> Iterator[None]:
    # Imported only now that the directory is set (see the module's docstring).
    from prometheus_client import start_http_server

    from userservice.db.engine import PoolOptions, build_engine, open_database
    from userservice.db.outbox_backlog import outbox_backlog
    from userservice.observability.multiprocess import OutboxGauges, scrape_registry

    # The supervisor's own small pool, for the outbox reading at scrape time; short
    # limits, so that a database in trouble slows a scrape, never hangs it.
    pool = PoolOptions(
        size=1,
        timeout_seconds=SCRAPE_DB_SECONDS,
        connect_timeout_seconds=settings.database_connect_timeout_seconds,
        statement_timeout_ms=int(SCRAPE_DB_SECONDS * 1000),
    )
    db = open_database(build_engine(settings.resolved_database_url(), pool=pool))
    registry = scrape_registry([OutboxGauges(lambda: outbox_backlog(db))], directory)
    try:
        # prometheus_client's own server: plain HTTP, the scrape on its own
        # thread, never sharing the service's event loop or its connections.
        server, thread = start_http_server(port, settings.metrics_host, registry=registry)
    except OSError as exc:
        db.dispose()
        where = f"{settings.metrics_host}:{port}"
        raise MetricsPortError(f"cannot serve metrics on {where}: {exc.strerror}") from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        db.dispose()
