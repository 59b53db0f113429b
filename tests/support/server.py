"""A real uvicorn server in a background thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme
import uvicorn

from userservice.app import create_app
from userservice.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    settings: Settings,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Serve create_app(settings); yields the base URL (https when cert is given).
    `port`: one chosen beforehand, when the settings' issuer must name it."""
    port = port or free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        server_header=False,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def trusted_server(settings: Settings, directory: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """create_app(settings) over TLS with a throwaway CA (the pair written to
    `directory`); yields (base URL, an SSL context that trusts exactly that CA)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "cert.pem", directory / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    with running_server(settings, cert=cert, key=key) as base:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        yield base, context
