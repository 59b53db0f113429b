"""Which metrics an application gets, and that each keeps its own: metrics off
are NoMetrics (the hot paths pay one no-op call), two applications in one process
never share or clash, and `serve` can set the multiprocess directory before
prometheus_client is first imported (it picks its value store at that moment)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.support.metrics import TOKEN, value
from userservice.app import create_app
from userservice.observability.metrics import NoMetrics
from userservice.observability.prometheus import PrometheusMetrics, metrics_for
from userservice.settings import Settings
from userservice.wiring import wired


def test_metrics_off_unless_a_port_or_token_is_set(make_settings: Callable[..., Settings]) -> None:
    off = metrics_for(make_settings())
    assert type(off) is NoMetrics and not off.enabled
    assert isinstance(metrics_for(make_settings(metrics_port=9464)), PrometheusMetrics)
    assert isinstance(metrics_for(make_settings(metrics_token=TOKEN)), PrometheusMetrics)


def test_each_application_counts_in_its_own_registry(
    make_settings: Callable[..., Settings],
) -> None:
    first, second = (create_app(make_settings(metrics_token=TOKEN)) for _ in range(2))
    with TestClient(first, base_url="https://testserver") as client:
        for _ in range(3):
            client.get("/healthz")
    first_metrics = wired(first).metrics
    second_metrics = wired(second).metrics
    assert isinstance(first_metrics, PrometheusMetrics)
    assert isinstance(second_metrics, PrometheusMetrics)
    count = "userservice_http_request_duration_seconds_count"
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(first_metrics.render()[0].decode(), count, **labels) == 3
    assert value(second_metrics.render()[0].decode(), count, **labels) == 0


def test_loading_serve_does_not_load_prometheus_client() -> None:
    probe = (
        "import sys, userservice.serve, userservice.cli; print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
