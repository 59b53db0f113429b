"""Graceful shutdown of a real `userservice serve` (R7): on SIGTERM the listener
closes at once, requests in flight get up to USERSERVICE_SHUTDOWN_GRACE_SECONDS
to finish, and the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.cli import command_env
from tests.support.serve_process import START_TIMEOUT, serve_command
from tests.support.server import free_port


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {START_TIMEOUT} s: {what}")
        time.sleep(0.02)


def _server_side_unread(port: int, client_ports: set[int]) -> int | None:
    """Bytes the server has not yet read, summed over its sockets of these client
    connections (/proc/net/tcp rx_queue); None until every one is established."""
    local = f"0100007F:{port:04X}"
    seen, unread = set(), 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if fields[1] == local and fields[3] == "01" and remote_port in client_ports:
            seen.add(remote_port)
            unread += int(fields[4].split(":")[1], 16)
    return unread if seen == client_ports else None


@dataclass
class Drained:
    answers: list[tuple[int, dict[str, object]]]
    refused_after: float
    answered_after: float
    exited_after: float
    code: int
    log: str


def _read_response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """(status, JSON body), or (0, {}) for a connection closed without an answer."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return 0, {}
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if status == 200 else {}


def _logins_at_sigterm(tmp_path: Path, grace: int, time_cost: int) -> Drained:
    """20 logins sent and read by a real `serve --no-tls` (each an argon2 hash of
    `time_cost`, queued at one hash per core), then SIGTERM."""
    port = free_port()
    # A file, not a pipe: a pipe nobody reads fills up and stalls the server's logging.
    log_file = tmp_path / "serve.log"
    with log_file.open("wb") as log_out:
        process = subprocess.Popen(
            serve_command(port, "--no-tls"),
            env=command_env(
                tmp_path / "data",
                USERSERVICE_SHUTDOWN_GRACE_SECONDS=str(grace),
                USERSERVICE_ARGON2_TIME_COST=str(time_cost),
                USERSERVICE_LOGIN_LIMIT_PER_ACCOUNT="1000/minute",
                USERSERVICE_LOGIN_LIMIT_PER_IP="1000/minute",
            ),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_out,
        )
    sockets: list[socket.socket] = []
    try:
        base = f"http://127.0.0.1:{port}"
        _until(lambda: _answers(f"{base}/readyz"), "serve ready")
        email = "drain@example.com"
        created = httpx.post(f"{base}/users", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        form = f"grant_type=password&username={email}&password={PASSWORD}".replace(" ", "+")
        request = (
            f"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n{form}"
        ).encode()
        for _ in range(20):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        for sock in sockets:
            sock.sendall(request)
        ports = {sock.getsockname()[1] for sock in sockets}
        # In flight: the server has read every request (nothing left in its sockets).
        _until(lambda: _server_side_unread(port, ports) == 0, "the 20 requests read")

        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        _until(lambda: _refused(port), "new connections refused")
        refused_after = time.monotonic() - stopped_at
        answers = [_read_response(sock) for sock in sockets]
        answered_after = time.monotonic() - stopped_at
        code = process.wait(timeout=grace + 30)
        exited_after = time.monotonic() - stopped_at
    finally:
        for sock in sockets:
            sock.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    log = log_file.read_text(errors="replace")
    return Drained(answers, refused_after, answered_after, exited_after, code, log)


def test_r7_sigterm_lets_requests_in_flight_finish_refuses_new_ones_and_exits_0(
    tmp_path: Path,
) -> None:
    """R7: 20 logins in flight when SIGTERM arrives: the listener closes at once,
    every login gets its complete answer, and serve exits 0 within
    USERSERVICE_SHUTDOWN_GRACE_SECONDS."""
    grace = 15
    drained = _logins_at_sigterm(tmp_path, grace, time_cost=8)
    assert [status for status, _ in drained.answers] == [200] * 20, drained.answers
    assert all(str(body.get("access_token", "")).count(".") == 2 for _, body in drained.answers)
    # New connections were refused while the logins were still being answered.
    assert drained.refused_after < drained.answered_after
    assert drained.code == 0, drained.log[-2000:]
    assert drained.exited_after < grace, drained.exited_after


def test_r7_the_grace_is_the_setting(tmp_path: Path) -> None:
    """R7: past USERSERVICE_SHUTDOWN_GRACE_SECONDS the requests still running are
    cancelled (uvicorn answers them 500) and serve exits 0, before an
    orchestrator's SIGKILL would come."""
    grace = 1
    # ~0.3 s a hash, two at a time: the 20 logins would need about 3 s.
    drained = _logins_at_sigterm(tmp_path, grace, time_cost=30)
    statuses = [status for status, _ in drained.answers]
    assert set(statuses) <= {200, 500} and statuses.count(500) > 0, statuses
    assert drained.code == 0, drained.log[-2000:]
    assert drained.exited_after < grace + 3, drained.exited_after


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
