"""`python -m bench.ab_observability` works: one tiny round of /users/me Bearer on
`userservice serve --workers 2` with metrics and JSON logs on and off, real servers
and wrk, and each side really did what it is named after (the "on" side's metrics
port counted the requests and its log lines are JSON objects; the "off" side wrote
its text access lines and has no metrics). Plus the arithmetic and the scrape on
their own. A full comparison is not a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from bench.ab_envs import Run, summarise
from bench.observability_cost import COMPARISON, FIGURES, REQUEST_COUNT, SIDES, requests_counted
from bench.servers import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]


def _run(round_: int, side: str, cpu: float, lines: float = 1.0) -> Run:
    extra = {"log_lines_per_request": lines, "json_lines_per_request": 0.0}
    return Run(round_, side, "me-bearer", 1000.0, 1.0, 5.0, cpu, 0, extra)


def test_the_sides_alternate_and_the_verdict_is_the_median_of_the_rounds() -> None:
    assert COMPARISON.order(0, 0) == ("off", "on")
    assert COMPARISON.order(1, 0) == ("on", "off")
    runs = [
        _run(1, "off", 400.0),
        _run(1, "on", 412.0),  # +3 %
        _run(2, "on", 440.0, lines=2.0),  # +10 %
        _run(2, "off", 400.0),
        _run(3, "off", 500.0),
        _run(3, "on", 535.0),  # +7 %
    ]
    entry = summarise(COMPARISON, runs, ["me-bearer"])["me-bearer"]
    assert entry["paired_change_pct"] == [3.0, 10.0, 7.0]
    assert entry["cpu_change_pct"] == 7.0
    assert entry["within_tolerance"] is False
    assert entry["on"]["log_lines_per_request"] == 1.0  # the median of 1, 2, 1
    # A figure a run did not report counts as 0.
    assert entry["on"]["metrics_count_per_request"] == 0.0
    assert summarise(COMPARISON, runs[:2], ["me-bearer"])["me-bearer"]["within_tolerance"]


def test_the_scrape_sums_the_request_count_over_every_series() -> None:
    registry = CollectorRegistry()
    histogram = Histogram(
        REQUEST_COUNT.removesuffix("_count"),
        "requests",
        ["method", "route", "status"],
        registry=registry,
    )
    for route, times in (("/users/me", 3), ("unmatched", 2)):
        for _ in range(times):
            histogram.labels("GET", route, "200").observe(0.01)
    port = free_port()
    server, thread = start_http_server(port, addr=HOST, registry=registry)
    try:
        assert requests_counted(port) == 5
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert requests_counted(port) is None  # nothing listens any more


@pytest.mark.bench
@pytest.mark.timeout(240)
def test_one_tiny_round_measures_both_sides(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        # Never a silent skip: the harness is part of "the tests pass".
        pytest.fail("wrk is not installed: run `make system-deps`", pytrace=False)
    out = tmp_path / "ab-observability.json"
    tiny = ["--rounds", "1", "--seconds", "1", "--warmup", "0", "--connections", "4"]
    tiny += ["--users", "40", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab_observability", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads(out.read_text())
    assert results["backend"] == "sqlite"
    assert results["sides"] == list(SIDES)
    entry = results["scenarios"]["me-bearer"]
    assert entry["errors"] == 0
    assert len(entry["paired_change_pct"]) == 1
    for side in SIDES:
        assert entry[side]["rps"] > 0, side
        assert entry[side]["cpu_us_per_request"] > 0, side
        assert set(FIGURES) <= set(entry[side]), side
    off, on = entry["off"], entry["on"]
    # At least one access line per request wrk counted (requests still in flight
    # when wrk stops are served and logged, not counted); "off" logs text.
    assert off["log_lines_per_request"] >= 1, off
    assert off["json_lines_per_request"] == 0, off
    assert off["metrics_count_per_request"] == 0, off
    # "on": every line a JSON object, and every request counted by /metrics.
    assert on["json_lines_per_request"] >= 1, on
    assert on["json_lines_per_request"] == on["log_lines_per_request"], on
    assert on["metrics_count_per_request"] >= 1, on
    assert sorted(r["side"] for r in results["runs"]) == sorted(SIDES)
    assert "medians over 1 rounds" in done.stdout
