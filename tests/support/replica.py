"""One replica of the loopback fleet (tests/support/fleet.py), and the settings every
replica starts with."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Short, test-friendly values: key rotations are noticed within a second, and
# per-address limits are high enough that only per-account limits are under test.
DEFAULT_ENV: dict[str, str] = {
    "USERSERVICE_LOG_LEVEL": "warning",
    "USERSERVICE_TRUSTED_PROXIES": "127.0.0.1",
    "USERSERVICE_SIGNING_KEY_RELOAD_SECONDS": "1",
    "USERSERVICE_JWKS_MAX_AGE_SECONDS": "1",
    "USERSERVICE_LOGIN_LIMIT_PER_ACCOUNT": "5/minute",
    "USERSERVICE_LOGIN_LIMIT_PER_IP": "100000/minute",
    "USERSERVICE_MAIL_LIMIT_PER_IP": "100000/minute",
    "USERSERVICE_DATABASE_POOL_SIZE": "8",
    "USERSERVICE_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
    "USERSERVICE_DATABASE_POOL_TIMEOUT_SECONDS": "5",
    "USERSERVICE_PRUNE_INTERVAL_SECONDS": "0",
    "USERSERVICE_SHUTDOWN_GRACE_SECONDS": "3",
}


class FleetError(RuntimeError):
    pass


@dataclass
class Replica:
    index: int
    port: int
    data_dir: Path
    log_path: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_target(self) -> str:
        """Where Prometheus scrapes it (`/metrics`, plain HTTP, every worker summed)."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
