"""Debian's Prometheus scraping the fleet's replicas, for the cluster tests.

A generated configuration (job `userservice`, the replicas' metrics ports as static
targets, scraped and evaluated every second), its TSDB and its log in a temporary
directory of its own, listening on 127.0.0.1 and a free port, nothing sent
anywhere (no remote write, no alerting). Stopped by its PID (SIGTERM, then SIGKILL);
`stop()` is safe after a failed `start()`. Importing this module starts nothing.

    with Prometheus(["127.0.0.1:9101", "127.0.0.1:9102"]) as prometheus:
        prometheus.scraped_since(time.time())
        prometheus.values("sum by (outcome) (userservice_logins_total)", "outcome")
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import Started

PROMETHEUS = "/usr/bin/prometheus"
JOB = "userservice"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def config(targets: Sequence[str], interval_seconds: int = 1) -> str:
    """The configuration file: one job, static targets; JSON is valid YAML."""
    interval = f"{interval_seconds}s"
    # The scrape timeout may not exceed the interval (Prometheus refuses the file).
    timeout = f"{max(interval_seconds * 900, 100)}ms"
    document = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": timeout,
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "scheme": "http",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


class Prometheus(Started):
    def __init__(self, targets: Sequence[str], directory: Path | None = None) -> None:
        self.targets = list(targets)
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="userservice-prometheus-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "prometheus.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- life cycle ------------------------------------------------------------------
    def _start(self) -> None:
        if not Path(PROMETHEUS).exists():
            raise PrometheusError(f"{PROMETHEUS} is not installed (make system-deps)")
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(config(self.targets))
        command = [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited: {self.log()[-3000:]}")
            try:
                ready = httpx.get(f"{self.url}/-/ready", timeout=2)
                if ready.status_code == 200:
                    return
                last = (ready.status_code, ready.text[:200])
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise PrometheusError(f"prometheus was not ready ({last!r}): {self.log()[-3000:]}")

    def stop(self) -> None:
        """Stop Prometheus by its PID; never raises for one that already died."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- queries ---------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query (now, or at the Unix time `at`): its samples. A vector
        gives one per series; a scalar one without labels."""
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {response.status_code} {body}")
        data = body["data"]
        if data["resultType"] == "vector":
            return [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        raise PrometheusError(f"query {promql!r} gave a {data['resultType']}, not a vector")

    def values(self, promql: str, by: str) -> dict[str, float]:
        """The samples of a query keyed by one label's value."""
        return {s.labels.get(by, ""): s.value for s in self.query(promql)}

    def targets_up(self) -> dict[str, float]:
        return self.values(f'up{{job="{JOB}"}}', "instance")

    def scraped_since(self, moment: float, timeout: float = 15.0) -> float:
        """Wait until every target was scraped successfully after the Unix time
        `moment` (a scrape's timestamp is when it started, so what a replica counted
        before `moment` is in it); returns the seconds waited."""
        started = time.monotonic()
        # timestamp() gives a sample's own time only when applied to a selector
        # (of anything computed it gives the evaluation time), so `up` is read apart.
        promql = f'timestamp(up{{job="{JOB}"}})'
        while True:
            found = self.values(promql, "instance")
            up = self.targets_up()
            scraped = {t for t in self.targets if found.get(t, 0) > moment and up.get(t) == 1}
            if scraped == set(self.targets):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise PrometheusError(
                    f"not every target scraped within {timeout} s after {moment:.3f}: "
                    f"last scrapes {found}, up {up}; "
                    f"{self.log()[-2000:]}"
                )
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
