"""The tools the cluster's metrics checks rely on: the Prometheus they read figures
from (tests/support/prometheus.py), against fixed exporters on loopback (it scrapes
every target, waits for a scrape round after a moment, sums across targets, is
stopped by its PID), and the dashboard's queries made runnable as Grafana sends them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.cluster_dashboard import DashboardError, instant, series
from tests.support.processes import alive
from tests.support.prometheus import JOB, Prometheus, PrometheusError

pytestmark = pytest.mark.cluster


@contextmanager
def exporter(counts: dict[str, int]) -> Iterator[str]:
    """A /metrics endpoint showing `counts` as they are when scraped."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            lines = ["# TYPE userservice_logins_total counter"]
            lines += [f'userservice_logins_total{{outcome="{k}"}} {v}' for k, v in counts.items()]
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_sums_every_target_after_a_moment() -> None:
    one, two = {"success": 2, "failure": 1}, {"success": 5}
    with exporter(one) as first, exporter(two) as second, Prometheus([first, second]) as p:
        pid = p.process.pid if p.process else 0
        p.scraped_since(time.time())
        assert p.targets_up() == {first: 1.0, second: 1.0}
        assert p.values("sum by (outcome) (userservice_logins_total)", "outcome") == {
            "success": 7.0,
            "failure": 1.0,
        }
        one["failure"] = 4
        p.scraped_since(time.time())
        assert p.values(f'sum by (job) (userservice_logins_total{{job="{JOB}"}})', "job") == {
            JOB: 11.0
        }
        with pytest.raises(PrometheusError, match="parse error"):
            p.query("sum(")
    assert pid and not alive(pid)


def test_a_target_down_is_reported_not_waited_for_forever() -> None:
    with exporter({}) as live, Prometheus([live, "127.0.0.1:1"]) as p:
        with pytest.raises(PrometheusError, match="not every target scraped"):
            p.scraped_since(time.time(), timeout=10)
        assert p.targets_up() == {live: 1.0, "127.0.0.1:1": 0.0}


def test_dashboard_variables_become_what_grafana_sends_for_all() -> None:
    variables = {"instance", "route"}
    expr = (
        'sum by (route) (rate(userservice_http_request_duration_seconds_count{instance="$instance",'
        ' route!="${route:regex}", job="userservice"}[$__rate_interval])) / $__range_s'
    )
    assert instant(expr, variables) == (
        'sum by (route) (rate(userservice_http_request_duration_seconds_count{instance=~".*",'
        ' route!~".*", job="userservice"}[1m])) / 300'
    )
    assert series(expr) == {"userservice_http_request_duration_seconds_count"}
    with pytest.raises(DashboardError, match=r"\$pod is neither"):
        instant('up{pod="$pod"}', variables)
