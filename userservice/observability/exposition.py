"""How `serve` exposes the metrics of all its workers (multiprocess mode).

prometheus_client chooses where values live (process memory or per-process files)
when its `values` module is first imported, from PROMETHEUS_MULTIPROC_DIR. So this
module imports nothing of it at load time: the directory is set first, and only
then is anything imported that loads prometheus_client, in this process (which
runs the application itself with one worker) and in the workers it spawns."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from userservice.observability.metrics import MULTIPROC_ENV, metrics_wanted
from userservice.settings import Settings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from prometheus_client import CollectorRegistry

NOT_FOUND = b"Not found: this port serves /metrics only.\n"


class MetricsPortError(RuntimeError):
    """Metrics cannot be served: the port is taken or the address not ours, or
    there is no directory for the workers' values."""


@contextmanager
def serving_metrics(settings: Settings) -> Iterator[None]:
    """Around uvicorn's run: prepares the workers' shared metrics directory and
    serves the metrics port while the server runs."""
    if not metrics_wanted(settings):
        # Metrics off (observability/prometheus.py metrics_for): nothing to share.
        yield
        return
    # Fresh at every start (O3: no counts carried over from a previous run), private
    # (0700: mkdtemp), and in TMPDIR: the data directory may be read-only.
    try:
        directory = tempfile.mkdtemp(prefix="userservice-metrics-")
    except OSError as exc:
        raise MetricsPortError(
            f"cannot make the workers' metrics directory (set TMPDIR to a writable "
            f"directory): {exc.strerror or exc}"
        ) from None
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
    from userservice.app_metrics import open_scrape_database, outbox_gauges
    from userservice.observability.multiprocess import scrape_registry

    db = open_scrape_database(settings)
    registry = scrape_registry([outbox_gauges(db)], directory)
    try:
        server, thread = _start_server(settings.metrics_host, port, registry)
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


def _start_server(
    host: str, port: int, registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """prometheus_client's exposition as its start_http_server serves it (plain
    HTTP, the scrape on its own thread, never sharing the service's event loop or
    its connections), but for `/metrics` only: any other path is 404."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    scrape = make_wsgi_app(registry)

    def only_metrics(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":
            answer: Iterable[bytes] = scrape(environ, start_response)
            return answer
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [NOT_FOUND]

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not logged (every 15 s of every Prometheus)."""

    app: WSGIApplication = only_metrics
    server = make_server(host, port, app, Server, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
