"""`userservice healthcheck`: asks the running server for /healthz where it listens.

`serve` records the URL at start in the data directory, so the probe (the Docker
image's HEALTHCHECK) follows `--port`, `--host` and `--no-tls` without being told."""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from userservice.security.files import PRIVATE_FILE, private_directory

LISTENER_FILE = "serve-listener.json"
# A wildcard listener is reached through the loopback address of its family.
log = logging.getLogger("userservice.healthcheck")
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def healthz_url(host: str, port: int, *, tls: bool) -> str:
    address = _LOOPBACK.get(host, host)
    if ":" in address:
        address = f"[{address}]"
    return f"{'https' if tls else 'http'}://{address}:{port}/healthz"


def record(data_dir: Path, url: str) -> None:
    """Write where this server answers (atomically: a probe never reads half a file)."""
    path = data_dir / LISTENER_FILE
    partial = path.with_suffix(".tmp")
    try:
        private_directory(data_dir)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w") as out:
            json.dump({"healthz": url}, out)
        os.replace(partial, path)
    except OSError as exc:
        # Serving matters more than the probe (a read-only data directory with
        # PostgreSQL and a mounted certificate is a valid set-up).
        log.warning("cannot record %s for `userservice healthcheck`: %s", path, exc.strerror)


def probe(data_dir: Path, timeout: float = 4.0) -> str | None:
    """None when the server answers 200 at its recorded URL, else what went wrong."""
    try:
        url = json.loads((data_dir / LISTENER_FILE).read_text())["healthz"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no server has recorded its address in {data_dir / LISTENER_FILE}"
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return f"{data_dir / LISTENER_FILE} holds no http(s) URL"
    # Liveness only, over loopback, with nothing secret sent: whether the certificate
    # is trusted (self-signed, or issued for a public name) does not matter here.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if status == 200 else f"{url}: status {status}"
