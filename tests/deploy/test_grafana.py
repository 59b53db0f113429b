"""The provisioned Grafana dashboard (deploy/grafana/): its panels name the
provisioned data source, every query is valid PromQL (promtool checks it as a
recording rule) and reads only the service's fixed metric names."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support.deploy_files import (
    DATASOURCE_UID,
    DEPLOY,
    METRIC_NAMES,
    dashboard,
    dashboard_queries,
    metric_names,
    panels,
    run_promtool,
)

GRAFANA = DEPLOY / "grafana"


def _as_rules(queries: list[tuple[str, str]]) -> str:
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr} for n, (_, expr) in enumerate(queries)
    ]
    return yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})


def test_dashboard_panels_use_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert dashboard()["uid"] == "userservice"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


def test_dashboard_provider_loads_the_dashboards_directory() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/userservice.yml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"] == "/etc/grafana/dashboards"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert not [expr for _, expr in queries if "$" in expr]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text(_as_rules(queries))
    result = run_promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_the_promql_check_rejects_a_broken_query(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text(_as_rules([("x", "sum by (le) (rate(userservice_logins_total[1m])")]))
    assert run_promtool("check", "rules", rules).returncode != 0


def test_every_query_reads_only_the_fixed_metric_names() -> None:
    read: set[str] = set()
    for title, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, title
        assert names <= METRIC_NAMES, (title, names - METRIC_NAMES)
        read |= names
    # Every metric the service exports has a panel.
    assert read == METRIC_NAMES


def test_the_panels_the_operators_need_are_there() -> None:
    titles = [panel["title"] for panel in panels()]
    for wanted in (
        "Replicas up",
        "Request rate by route and status",
        "Latency p50 / p95 / p99",
        "Server error ratio (5xx)",
        "Sign-ins by outcome",
        "Tokens issued by grant",
        "Refresh token reuse detected",
        "Throttled requests by limit",
        "Password hash queue wait p95",
        "Database pool: in use vs limit",
        "Mail outbox depth",
        "Mail outbox oldest message age",
    ):
        assert wanted in titles
    assert len({panel["id"] for panel in panels()}) == len(titles)
    latency = next(p for p in panels() if p["title"].startswith("Latency"))
    quantiles = [re.search(r"histogram_quantile\(([\d.]+)", t["expr"]) for t in latency["targets"]]
    assert [q.group(1) for q in quantiles if q] == ["0.5", "0.95", "0.99"]
