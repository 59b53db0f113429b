"""O3: a real `userservice serve` with a metrics port: every worker's requests are
summed at one scrape, a restart starts from zero, a killed worker's live gauges
leave the sum; with one worker too; a busy metrics port is one clear error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.accounts import bearer
from tests.support.cli import run_cli
from tests.support.metrics import TOKEN, total, value
from tests.support.serve_process import Served, serve, trusting
from tests.support.server import free_port
from userservice.observability.exposition import MetricsPortError, serving_metrics
from userservice.settings import Settings

REQUESTS = 120
POOL_LIMIT = 16 + 16  # SQLite: the default pool size, and as many again for bursts
COUNT = "userservice_http_request_duration_seconds_count"


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def _one_connection(served: Served, ca: Path) -> int:
    # A client per request: a new connection each time, spread over the workers.
    with httpx.Client(verify=trusting(ca), timeout=30) as client:
        return client.get(f"{served.base}/healthz").status_code


def _send(served: Served, ca: Path, count: int) -> None:
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _one_connection(served, ca), range(count)))
    assert statuses == [200] * count


def _environment(tmp_path: Path, metrics_port: int) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    # The metrics directory goes to TMPDIR: here, where the test can look into it.
    return {"USERSERVICE_METRICS_PORT": str(metrics_port), "TMPDIR": str(temp)}


def _healthz_count(path: Path) -> float:
    """The /healthz requests one worker's own file holds."""
    merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
    return sum(
        float(sample.value)
        for family in merged
        for sample in family.samples
        if sample.name == COUNT and sample.labels.get("route") == "/healthz"
    )


def _workers(served: Served) -> list[int]:
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    # Not multiprocessing's resource tracker, also a child of serve.
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_o3_every_worker_is_counted_and_a_restart_starts_from_zero(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = _environment(tmp_path, port)
    ca = data_dir / "tls" / "ca.crt"
    with serve(data_dir, None, "--workers", "2", env=env) as served:
        before = scrape(port)
        assert value(before, COUNT, method="GET", route="/healthz", status="200") == 0
        _send(served, ca, REQUESTS)
        after = scrape(port)
        # Both workers served, wrote their own files, and are summed here.
        [directory] = (tmp_path / "tmp").glob("userservice-metrics-*")
        assert oct(directory.stat().st_mode & 0o777) == "0o700"
        served_by = [_healthz_count(path) for path in directory.glob("histogram_*.db")]
        assert len(served_by) == 2 and min(served_by) > 0, served_by
        assert total(after, COUNT) - total(before, COUNT) == REQUESTS
        assert value(after, COUNT, method="GET", route="/healthz", status="200") == REQUESTS
        assert value(after, "userservice_db_pool_connections_limit") == 2 * POOL_LIMIT
        assert value(after, "userservice_mail_outbox_messages") == 0
        assert value(after, "userservice_mail_outbox_oldest_age_seconds") == 0

        # A worker killed outright never runs its shutdown: its live gauges go
        # anyway, and its replacement's come in.
        victim = _workers(served)[0]
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(_workers(served)) == 2 and victim not in _workers(served))
        _wait_for(
            lambda: value(scrape(port), "userservice_db_pool_connections_limit") == 2 * POOL_LIMIT
        )
        # Its counts stay: those requests were answered.
        kept = scrape(port)
        assert value(kept, COUNT, method="GET", route="/healthz", status="200") == REQUESTS
    # Removed when serve stops.
    assert list((tmp_path / "tmp").glob("userservice-metrics-*")) == []

    with serve(data_dir, None, "--workers", "2", env=env) as served:
        fresh = scrape(port)
        assert value(fresh, COUNT, method="GET", route="/healthz", status="200") == 0
        _send(served, ca, 10)
        assert value(scrape(port), COUNT, method="GET", route="/healthz", status="200") == 10


def test_o3_one_worker_runs_in_serve_itself_and_is_counted(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    with serve(data_dir, None, env=_environment(tmp_path, port)) as served:
        _send(served, data_dir / "tls" / "ca.crt", 30)
        text = scrape(port)
        assert value(text, COUNT, method="GET", route="/healthz", status="200") == 30
        assert value(text, "userservice_db_pool_connections_limit") == POOL_LIMIT
        # O1: the metrics port answers /metrics and nothing else.
        for path in ("/", "/metrics/", "/users", "/favicon.ico"):
            other = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert other.status_code == 404, path
            assert "userservice_" not in other.text


def test_o3_a_busy_metrics_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            tmp_path / "data",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            USERSERVICE_METRICS_PORT=str(port),
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"userservice: error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    )


def test_o1_the_metrics_port_cannot_be_the_service_port(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli(
        tmp_path / "data",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        USERSERVICE_METRICS_PORT=str(port),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"userservice: error: USERSERVICE_METRICS_PORT {port} is the service's own port: "
        "choose another"
    ]


def test_o3_no_directory_for_the_workers_values_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only filesystem without a writable TMPDIR (a container's): one line
    (serve prints it and exits 2, as for a busy port), not a traceback."""
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_directory / "tmp"))
    settings = Settings(_env_file=None, metrics_port=free_port())  # type: ignore[call-arg]
    with pytest.raises(MetricsPortError) as refused, serving_metrics(settings):
        raise AssertionError("served without a metrics directory")
    message = str(refused.value)
    assert message.startswith("cannot make the workers' metrics directory (set TMPDIR")
    assert "\n" not in message
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_o1_no_metrics_port_unless_set(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(data_dir, None, env={"TMPDIR": str(tmp_path)}) as served:
        with httpx.Client(verify=trusting(data_dir / "tls" / "ca.crt")) as client:
            assert client.get(f"{served.base}/metrics").status_code == 404
        listening = subprocess.run(
            ["ss", "-Hltnp"], capture_output=True, text=True, check=False
        ).stdout
        ours = [line for line in listening.splitlines() if f"pid={served.process.pid}," in line]
        assert len(ours) == 1, ours  # the service port only
    assert not list(tmp_path.glob("userservice-metrics-*"))


@pytest.fixture(autouse=True)
def _no_stray_multiproc_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # serve must make its own directory, never inherit one from the caller.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_o1_o3_the_token_reads_every_worker_on_the_service_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"USERSERVICE_METRICS_TOKEN": TOKEN, "TMPDIR": str(tmp_path)}
    ca = data_dir / "tls" / "ca.crt"
    with serve(data_dir, None, "--workers", "2", env=env) as served:
        _send(served, ca, 40)
        with httpx.Client(verify=trusting(ca), timeout=30) as client:
            assert client.get(f"{served.base}/metrics").status_code == 401
            # Whichever worker answers, it reads every worker's files.
            for _ in range(4):
                response = client.get(f"{served.base}/metrics", headers=bearer(TOKEN))
                assert response.status_code == 200
                labels = {"method": "GET", "route": "/healthz", "status": "200"}
                assert value(response.text, COUNT, **labels) == 40
                assert (
                    value(response.text, "userservice_db_pool_connections_limit") == 2 * POOL_LIMIT
                )
