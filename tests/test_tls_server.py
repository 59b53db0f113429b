"""`userservice serve` for real: a subprocess speaking TLS on 127.0.0.1, checked by
clients that verify the certificate against a CA made for the test (G7, F6, R7)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import PASSWORD
from tests.support.server import free_port
from userservice.listeners import balancing_supported

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    base: str


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


def trusting(ca: Path) -> ssl.SSLContext:
    """A verifying client context that trusts only the given CA file."""
    return ssl.create_default_context(cafile=str(ca))


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERSERVICE_")}
    env.update(
        USERSERVICE_DATA_DIR=str(data_dir),
        USERSERVICE_ENV_FILE="/dev/null",
        USERSERVICE_LOG_LEVEL="warning",
    )
    return env


@contextmanager
def serve(data_dir: Path, ca: Path | None, *args: str, host: str = "127.0.0.1") -> Iterator[Served]:
    """Start `userservice serve`, wait for /readyz, and on exit SIGTERM it by its PID
    and require a clean exit status 0 (R7)."""
    port = free_port()
    command = [sys.executable, "-m", "userservice", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *args],
        env=_env(data_dir),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(process, port, f"https://{host}:{port}")
    try:
        _wait_ready(served, data_dir, ca)
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
            process.stderr.close()


def _wait_ready(served: Served, data_dir: Path, ca: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            err = served.process.stderr.read().decode() if served.process.stderr else ""
            pytest.fail(f"serve exited with {served.process.returncode}: {err[-2000:]}")
        # In self-signed mode the CA file appears only once serve has made it.
        verify = ca or data_dir / "tls" / "localhost.crt"
        if verify.exists():
            try:
                response = httpx.get(f"{served.base}/readyz", verify=trusting(verify), timeout=2)
                if response.status_code == 200:
                    return
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
        time.sleep(0.2)
    pytest.fail(f"serve was not ready within {START_TIMEOUT} s (last: {last!r})")


@pytest.fixture(scope="module")
def server(tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    with serve(
        data_dir, tls_files.ca, "--cert", str(tls_files.cert), "--key", str(tls_files.key)
    ) as s:
        yield s


def _handshake(port: int, ca: Path, version: ssl.TLSVersion) -> str | None:
    context = trusting(ca)
    context.minimum_version = version
    context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        # Let the local OpenSSL really offer the old protocol (its default security
        # level forbids it), so the refusal we see is the server's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


def test_register_login_and_me_with_bearer_and_basic_over_tls(
    server: Served, tls_files: TlsFiles
) -> None:
    with httpx.Client(base_url=server.base, verify=trusting(tls_files.ca), timeout=10) as client:
        created = client.post("/users", json={"email": "tls@example.com", "password": PASSWORD})
        assert created.status_code == 201, created.text
        token = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "tls@example.com", "password": PASSWORD},
        )
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        me = client.get("/users/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200 and me.json()["email"] == "tls@example.com"
        basic = base64.b64encode(f"tls@example.com:{PASSWORD}".encode()).decode()
        me_basic = client.get("/users/me", headers={"Authorization": f"Basic {basic}"})
        assert me_basic.status_code == 200 and me_basic.json()["id"] == me.json()["id"]


def test_tls_1_2_and_1_3_are_accepted(server: Served, tls_files: TlsFiles) -> None:
    """G7: modern TLS works with a verifying client."""
    assert _handshake(server.port, tls_files.ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(server.port, tls_files.ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


def test_tls_1_1_is_refused(server: Served, tls_files: TlsFiles) -> None:
    """G7: TLS 1.2+ only; a TLS 1.1 handshake fails."""
    with warnings.catch_warnings(), pytest.raises(ssl.SSLError):
        # Python deprecates naming TLS 1.1 at all; naming it is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        _handshake(server.port, tls_files.ca, ssl.TLSVersion.TLSv1_1)


def test_no_server_banner_and_hsts_on_responses(server: Served, tls_files: TlsFiles) -> None:
    """G7 / F6: no server version banner; HSTS of at least a year."""
    for path in ("/healthz", "/users/me", "/openapi.json"):
        response = httpx.get(f"{server.base}{path}", verify=trusting(tls_files.ca), timeout=10)
        assert "server" not in response.headers, (path, response.headers)
        hsts = response.headers.get("strict-transport-security", "")
        directives = dict(
            part.strip().partition("=")[::2] for part in hsts.split(";") if part.strip()
        )
        assert int(directives.get("max-age", "0")) >= 31536000, (path, hsts)


def _listening_sockets(port: int) -> int:
    """LISTEN (0A) entries for 127.0.0.1:port in /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "0A")


def _workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {START_TIMEOUT} s: {what}")
        time.sleep(0.1)


def test_serve_with_two_workers_answers(tls_files: TlsFiles, tmp_path: Path) -> None:
    """Each worker listens on its own socket of the port (userservice/listeners.py),
    and a worker that dies is replaced, with a socket of its own again."""
    cert_args = ("--cert", str(tls_files.cert), "--key", str(tls_files.key))
    with (
        serve(tmp_path / "data", tls_files.ca, *cert_args, "--workers", "2") as served,
        httpx.Client(verify=trusting(tls_files.ca), timeout=10) as client,
    ):
        for _ in range(10):
            assert client.get(f"{served.base}/healthz").status_code == 200
        assert client.get(f"{served.base}/readyz").status_code == 200
        if not balancing_supported():
            return
        _until(
            lambda: len(_workers(served.process.pid)) == 2 and _listening_sockets(served.port) == 2,
            "two workers, each listening",
        )
        victim = _workers(served.process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        _until(
            lambda: (
                victim not in _workers(served.process.pid)
                and len(_workers(served.process.pid)) == 2
                and _listening_sockets(served.port) == 2
            ),
            "the dead worker replaced, listening",
        )
        with httpx.Client(verify=trusting(tls_files.ca), timeout=10) as fresh:
            for _ in range(10):
                assert fresh.get(f"{served.base}/readyz").status_code == 200


def _kids(base: str, ca: Path) -> set[str]:
    jwks = httpx.get(f"{base}/oauth/jwks", verify=trusting(ca), timeout=10)
    assert jwks.status_code == 200, jwks.text
    return {key["kid"] for key in jwks.json()["keys"]}


def test_default_self_signed_certificate_is_made_once_and_reused(tmp_path: Path) -> None:
    """With no --cert, serve makes a localhost certificate in the data directory on
    first start; a restart reuses it and the signing keys stored in the database."""
    data_dir = tmp_path / "data"
    crt = data_dir / "tls" / "localhost.crt"
    assert not crt.exists()
    with serve(data_dir, None, host="localhost") as first:
        assert crt.exists()
        first_cert = crt.read_bytes()
        response = httpx.get(f"{first.base}/healthz", verify=trusting(crt), timeout=10)
        assert response.status_code == 200
        first_kids = _kids(first.base, crt)
        assert first_kids
    with serve(data_dir, None, host="localhost") as second:
        assert crt.read_bytes() == first_cert
        assert _kids(second.base, crt) == first_kids
