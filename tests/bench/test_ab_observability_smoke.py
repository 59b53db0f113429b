"""`python -m bench.ab_observability` works: one tiny round of /users/me Bearer on
`userservice serve --workers 2` with metrics and JSON logs on and off, real servers
and wrk, and each side really did what it is named after (the "on" side's metrics
port counted the requests and its log lines are JSON objects; the "off" side wrote
its text access lines and has no metrics). Plus the arithmetic and the scrape on
their own. A full comparison is not a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from bench.ab_envs import Run, summarise
from bench.observability_cost import COMPARISON, FIGURES, REQUEST_COUNT, SIDES, requests_counted
from bench.servers import HOST, free_port

# The tiny_round fixture (conftest.py): (module, users, arguments) -> (stdout, JSON).
TinyRound = Callable[[str, int, list[str]], tuple[str, dict[str, Any]]]


def _run(round_: int, side: str, cpu: float, lines: float) -> Run:
    extra = {"log_lines_per_request": lines, "json_lines_per_request": 0.0}
    return Run(round_, side, "me-bearer", 1000.0, 1.0, 5.0, cpu, 0, extra)


def test_the_sides_alternate_and_each_side_gets_the_medians_of_its_figures() -> None:
    # The verdict's arithmetic (bench/ab_envs.py) is test_ab_redis_smoke's.
    assert COMPARISON.order(0, 0) == ("off", "on")
    assert COMPARISON.order(1, 0) == ("on", "off")
    runs = [_run(n, side, 400.0, lines=n) for n in (1, 2, 3) for side in SIDES]
    entry = summarise(COMPARISON, runs, ["me-bearer"])["me-bearer"]
    assert entry["paired_change_pct"] == [0.0, 0.0, 0.0]
    assert entry["on"]["log_lines_per_request"] == entry["off"]["log_lines_per_request"] == 2
    # A figure a run did not report counts as 0.
    assert entry["on"]["metrics_count_per_request"] == 0.0


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
def test_one_tiny_round_measures_both_sides(tiny_round: TinyRound) -> None:
    _stdout, results = tiny_round("bench.ab_observability", 40, [])
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
