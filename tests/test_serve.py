"""`userservice serve` for real: a subprocess speaking TLS on 127.0.0.1, checked by
clients that verify the certificate against a CA made for the test, or against the
local CA that serve makes itself (G7, F6, R7, S10)."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509

from tests.support.accounts import PASSWORD
from tests.support.cli import command_env
from tests.support.serve_process import (
    START_TIMEOUT,
    Served,
    serve,
    serve_command,
    trusting,
)
from tests.support.server import free_port
from tests.support.tls import strict_verify, write_legacy_self_signed
from userservice.listeners import balancing_supported

# Offered alone by a TLS 1.2 client: CBC suites that OpenSSL's defaults accept
# (SHA-256/384 MACs) and the older SHA-1 ones, for ECDSA and RSA certificates.
CBC_ONLY = ":".join(
    (
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
    )
)
EXTRA_NAME = "id.example.test"


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


@pytest.fixture(scope="module")
def server(tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    with serve(
        data_dir, tls_files.ca, "--cert", str(tls_files.cert), "--key", str(tls_files.key)
    ) as s:
        yield s


@dataclass
class Trusted:
    served: Served
    ca: Path


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trusted]:
    """serve with no --cert: its own local CA and certificate, with one extra name."""
    data_dir = tmp_path_factory.mktemp("serve-default") / "data"
    extra = {"USERSERVICE_TLS_EXTRA_NAMES": json.dumps([EXTRA_NAME])}
    with serve(data_dir, None, env=extra) as served:
        yield Trusted(served, data_dir / "tls" / "ca.crt")


@pytest.fixture(params=["given-cert", "default-cert"])
def any_server(request: pytest.FixtureRequest, tls_files: TlsFiles) -> Trusted:
    """Each TLS policy test runs against a --cert server and the default one."""
    if request.param == "given-cert":
        return Trusted(request.getfixturevalue("server"), tls_files.ca)
    default: Trusted = request.getfixturevalue("default_server")
    return default


def _handshake(
    port: int,
    ca: Path,
    version: ssl.TLSVersion,
    *,
    ciphers: str | None = None,
    hostname: str = "localhost",
) -> tuple[str | None, str, bytes]:
    """A verifying handshake: (protocol version, cipher suite, server certificate DER)."""
    context = trusting(ca)
    context.minimum_version = version
    context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        # Let the local OpenSSL really offer the old protocol (its default security
        # level forbids it), so the refusal we see is the server's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    elif ciphers is not None:
        context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        cipher = tls.cipher()
        der = tls.getpeercert(binary_form=True)
        assert cipher is not None and der is not None
        return tls.version(), cipher[0], der


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


def test_tls_1_2_and_1_3_are_accepted(any_server: Trusted) -> None:
    """G7, S10: modern TLS works with a verifying client; TLS 1.2 picks an AEAD suite."""
    version, cipher, _ = _handshake(any_server.served.port, any_server.ca, ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    version, _, _ = _handshake(any_server.served.port, any_server.ca, ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3"


def test_tls_1_1_is_refused(any_server: Trusted) -> None:
    """G7: TLS 1.2+ only; a TLS 1.1 handshake fails."""
    with warnings.catch_warnings(), pytest.raises(ssl.SSLError):
        # Python deprecates naming TLS 1.1 at all; naming it is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        _handshake(any_server.served.port, any_server.ca, ssl.TLSVersion.TLSv1_1)


def test_tls_1_2_with_only_cbc_suites_is_refused(any_server: Trusted) -> None:
    """S10: TLS 1.2 offers AEAD suites only (no CBC padding oracles)."""
    with pytest.raises(ssl.SSLError):
        _handshake(any_server.served.port, any_server.ca, ssl.TLSVersion.TLSv1_2, ciphers=CBC_ONLY)


def test_the_default_certificate_passes_default_and_strict_verification(
    default_server: Trusted,
) -> None:
    """S10: trusting ca.crt, Python's default verification and cryptography's strict
    policy verifier both accept what the server presents, for each of its names."""
    port, ca = default_server.served.port, default_server.ca
    for hostname, subject in (
        ("localhost", x509.DNSName("localhost")),
        (EXTRA_NAME, x509.DNSName(EXTRA_NAME)),
        ("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
    ):
        _, _, der = _handshake(port, ca, ssl.TLSVersion.TLSv1_3, hostname=hostname)
        strict_verify(ca, x509.load_der_x509_certificate(der), subject)
    for base in (f"https://localhost:{port}", f"https://127.0.0.1:{port}"):
        assert httpx.get(f"{base}/healthz", verify=trusting(ca), timeout=10).status_code == 200


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


def _tls_dir_contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def test_default_certificate_is_made_once_and_reused_replacing_the_old_pair(
    tmp_path: Path,
) -> None:
    """With no --cert, serve makes a local CA and a certificate in the data directory,
    replacing the self-signed pair of earlier releases (S10), and says which file
    clients must trust; a restart reuses them and the signing keys in the database."""
    data_dir = tmp_path / "data"
    tls_dir = data_dir / "tls"
    write_legacy_self_signed(tls_dir)
    ca = tls_dir / "ca.crt"
    with serve(data_dir, None, host="localhost") as first:
        assert not (tls_dir / "localhost.crt").exists()
        assert not (tls_dir / "localhost.key").exists()
        made = _tls_dir_contents(tls_dir)
        response = httpx.get(f"{first.base}/healthz", verify=trusting(ca), timeout=10)
        assert response.status_code == 200
        first_kids = _kids(first.base, ca)
        assert first_kids
    assert "localhost.crt" in first.log and str(ca) in first.log, first.log
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((tls_dir / name).stat().st_mode) == 0o600 for name in made)
    with serve(data_dir, None, host="localhost") as second:
        assert _tls_dir_contents(tls_dir) == made
        assert _kids(second.base, ca) == first_kids
    assert str(ca) not in second.log


def test_a_bad_extra_name_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_command(free_port()),
        env=command_env(
            tmp_path / "data", USERSERVICE_TLS_EXTRA_NAMES='["id.example.test", "*.bad"]'
        ),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2, lines
    assert len(lines) == 1 and "TLS_EXTRA_NAMES" in lines[0] and "*.bad" in lines[0], lines
    assert not (tmp_path / "data" / "tls" / "ca.crt").exists()
