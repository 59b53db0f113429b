"""`userservice serve` as a real subprocess on 127.0.0.1, for the TLS tests: started,
waited for with a verifying client, and stopped by its PID."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import command_env
from tests.support.server import free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    base: str
    # serve's stderr (its log), filled in once it has stopped.
    log: str = ""


def trusting(ca: Path) -> ssl.SSLContext:
    """A verifying client context (Python's defaults) that trusts only the given CA file."""
    return ssl.create_default_context(cafile=str(ca))


def serve_command(port: int, *args: str) -> list[str]:
    command = [sys.executable, "-m", "userservice", "serve", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), *args]


@contextmanager
def serve(
    data_dir: Path,
    ca: Path | None,
    *args: str,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Start `userservice serve`, wait for /readyz, and on exit SIGTERM it by its PID
    and require a clean exit status 0. With `ca` None, the client trusts the
    local CA that serve makes in the data directory."""
    port = free_port()
    process = subprocess.Popen(
        serve_command(port, *args),
        env=command_env(data_dir, **(env or {})),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(process, port, f"https://{host}:{port}")
    try:
        _wait_ready(served, ca or data_dir / "tls" / "ca.crt")
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
                pytest.fail("serve did not stop within 30 s of SIGTERM")
            assert code == 0, f"serve exited with {code} after SIGTERM"
        if process.stderr is not None:
            served.log = process.stderr.read().decode(errors="replace")
            process.stderr.close()


def _wait_ready(served: Served, ca: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            err = served.process.stderr.read().decode() if served.process.stderr else ""
            pytest.fail(f"serve exited with {served.process.returncode}: {err[-2000:]}")
        # With no --cert the CA file appears only once serve has made it.
        if ca.exists():
            try:
                response = httpx.get(f"{served.base}/readyz", verify=trusting(ca), timeout=2)
                if response.status_code == 200:
                    return
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
        time.sleep(0.2)
    pytest.fail(f"serve was not ready within {START_TIMEOUT} s (last: {last!r})")
