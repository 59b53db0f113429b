"""Debian's Chromium driven by Playwright against a real uvicorn over TLS.

Chromium trusts no CA file given on the command line; rather than switch
certificate checks off (ignore_https_errors), it is told to accept exactly the
test server's public key (an SPKI pin) and nothing else."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.server import running_server
from userservice.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> None:
    # Never a skip: the browser suites are part of "the tests pass" (CI installs it).
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (bash scripts/system-deps.sh)",
            pytrace=False,
        )


def spki_pin(cert_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)), as Chromium's SPKI allow-list wants it."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@contextmanager
def served_with_user(
    database_url: str, directory: Path, email: str, password: str, issuer: str
) -> Iterator[tuple[str, str]]:
    """A TLS server with one user registered through the API before the browser
    comes (in-process, on the same database); yields (base URL, pin)."""
    from fastapi.testclient import TestClient

    from userservice.app import create_app

    settings = Settings(
        _env_file=None, database_url=database_url, data_dir=directory, issuer=issuer
    )
    with TestClient(create_app(settings), base_url=issuer) as client:
        created = client.post("/users", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
    with tls_server(settings, directory) as served_at:
        yield served_at


@contextmanager
def served_after(
    database_url: str, directory: Path, prepare: Callable[[Any, Any], object]
) -> Iterator[tuple[str, str]]:
    """`prepare(client, app)` in-process on the database (a TestClient at the tests'
    issuer, tests.support.accounts.ISSUER), then a TLS server of the same settings
    over it; yields (base URL, pin)."""
    from fastapi.testclient import TestClient

    from tests.support.accounts import ISSUER
    from userservice.app import create_app

    settings = Settings(
        _env_file=None, database_url=database_url, data_dir=directory, issuer=ISSUER
    )
    app = create_app(settings)
    with TestClient(app, base_url=ISSUER) as client:
        prepare(client, app)
    with tls_server(settings, directory) as served_at:
        yield served_at


@contextmanager
def tls_server(
    settings: Settings, directory: Path, port: int | None = None
) -> Iterator[tuple[str, str]]:
    """Serve create_app(settings) over TLS with a throwaway CA (written to
    `directory`/ca.pem); yields (base URL, pin)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "server.pem", directory / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    # For HTTP clients beside the browser: they verify against this CA.
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    with running_server(settings, cert=cert, key=key, port=port) as base:
        yield base, spki_pin(leaf.cert_chain_pems[0].bytes())


def launch(playwright: Any, pin: str) -> Any:
    """Headless Chromium with the flags a root user on a closed network needs."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--ignore-certificate-errors-spki-list={pin}",
        ],
    )
