"""One listening socket per worker process, so the kernel spreads connections
evenly over the workers.

uvicorn's `--workers` binds one socket in the parent and every worker accepts from
it. Each worker's event loop accepts all the connections queued when it wakes,
so a burst of new connections mostly lands on whichever worker woke first.
Measured with wrk opening 64 keep-alive connections against 2 workers, six
times: 63/1, 23/41, 64/0, 16/48, 29/35 and 33/31. One worker then serves most
clients on one core while the other core idles, and the whole service runs at up
to half its speed for as long as those connections stay open. libuv's
UV_TCP_SINGLE_ACCEPT only helps for small bursts (still 252/4 at 256
connections).

On Linux, sockets bound to the same address with SO_REUSEPORT form a group, and
the kernel hands each new connection to one of them by a hash of its addresses.
So each worker binds its own socket: 32/32 ± a few, whatever the timing.

The workers are still uvicorn's (its supervisor restarts a dead one and handles
the signals). Only the socket it passes to each worker changes: the parent passes
a `ReusePortListener`, which is pickled into the spawned worker and turns into that
worker's own bound socket when the worker unpickles it."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

logger = logging.getLogger("uvicorn.error")
# uvicorn.server.STARTUP_FAILURE: a worker that exits with it failed before serving,
# so its supervisor stops rather than restart it (tests/test_listeners.py checks it).
STARTUP_FAILURE = 3


def balancing_supported() -> bool:
    """SO_REUSEPORT spreads connections on Linux only (macOS and the BSDs accept it
    but do not balance)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A socket of the port's SO_REUSEPORT group; uvicorn's server calls listen().
    A failure ends the worker as a startup failure, which stops the supervisor
    instead of making it restart the worker forever."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logger.error("cannot listen on %s:%d: %s", host, port, exc.strerror)
        sys.exit(STARTUP_FAILURE)
    return sock


class ReusePortListener:
    """Stands for a worker's socket in the parent: unpickled in a worker, it is a
    new socket of the SO_REUSEPORT group (see the module's docstring)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Callable[[str, int], socket.socket], tuple[str, int]]:
        return bind_reuseport, (self.host, self.port)


def run_balanced(app: str, **options: Any) -> None:
    """uvicorn.run(app, workers=N, ...) with one socket per worker where the
    platform balances them, else exactly uvicorn.run."""
    workers = int(options.get("workers") or 1)
    if workers < 2 or not balancing_supported():
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    scheme = "https" if config.is_ssl else "http"
    host = f"[{config.host}]" if ":" in config.host else config.host
    logger.info(
        "Uvicorn running on %s://%s:%d with %d workers, one socket each (SO_REUSEPORT)",
        scheme,
        host,
        config.port,
        workers,
    )
    listener: Any = ReusePortListener(config.host, config.port)
    supervisor = Multiprocess(config, sockets=[listener])
    with contextlib.suppress(KeyboardInterrupt):
        supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        # A worker could not start (its port taken, its lifespan start-up failed): the
        # supervisor stopped; so does the command, with uvicorn's own exit status.
        sys.exit(STARTUP_FAILURE)
