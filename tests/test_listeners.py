"""One listening socket per worker (userservice/listeners.py): the kernel spreads
connections over the sockets of a SO_REUSEPORT group; a worker's socket is made
in the worker from the pickled listener; a port that is taken fails the worker as
a startup failure."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import uvicorn.server

from tests.support.server import free_port
from userservice.listeners import (
    STARTUP_FAILURE,
    ReusePortListener,
    balancing_supported,
    bind_reuseport,
)

pytestmark = pytest.mark.skipif(not balancing_supported(), reason="SO_REUSEPORT balances on Linux")

CONNECTIONS = 64
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def listening(count: int, port: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(bind_reuseport("127.0.0.1", port))
            sock.listen(CONNECTIONS)
            sock.setblocking(False)
            sockets.append(sock)
        yield sockets


def _accept_all(sock: socket.socket) -> int:
    accepted = 0
    while True:
        try:
            conn, _addr = sock.accept()
        except BlockingIOError:
            return accepted
        conn.close()
        accepted += 1


def test_startup_failure_is_uvicorns() -> None:
    assert STARTUP_FAILURE == uvicorn.server.STARTUP_FAILURE


def test_the_kernel_spreads_connections_over_the_group() -> None:
    """Two workers' sockets on one port: 64 connections from one client land on
    both, about half each (a binomial split below 12 of 64 has odds of ~1e-7)."""
    port = free_port()
    with listening(2, port) as sockets, ExitStack() as clients:
        for _ in range(CONNECTIONS):
            clients.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        counts = [_accept_all(sock) for sock in sockets]
    assert sum(counts) == CONNECTIONS
    assert min(counts) >= 12, counts


def test_a_pickled_listener_is_a_socket_of_the_group_where_it_is_unpickled() -> None:
    port = free_port()
    blob = pickle.dumps(ReusePortListener("127.0.0.1", port))
    with pickle.loads(blob) as first, pickle.loads(blob) as second:  # noqa: S301 - our own
        assert isinstance(first, socket.socket)
        for sock in (first, second):
            assert sock.getsockname() == ("127.0.0.1", port)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_a_taken_port_fails_the_worker_at_startup() -> None:
    """A port held by a socket outside the group (another program): the worker exits
    with uvicorn's startup-failure code, so the supervisor stops instead of
    restarting it forever."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            bind_reuseport("127.0.0.1", port)
    assert exited.value.code == STARTUP_FAILURE


def test_serving_on_a_taken_port_stops_with_the_startup_failure_status() -> None:
    """The port taken after serve's own check (e.g. during migrations): each worker
    fails to bind, the supervisor stops, and the command exits 3, not 0, so a
    service manager sees the failure."""
    script = (
        "import sys; from userservice.listeners import run_balanced; "
        "run_balanced('bench.ceiling_app:app', host='127.0.0.1', "
        "port=int(sys.argv[1]), workers=2, log_level='critical')"
    )
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", script, str(port)],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == STARTUP_FAILURE, done.stderr.decode()[-2000:]
