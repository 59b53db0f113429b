"""What the deployment tests share about deploy/: the fixed metric names, the
dashboard's queries as Prometheus evaluates them, the metric names a PromQL
expression reads, and `promtool` (installed by scripts/system-deps.sh; a missing
one fails loudly, never skips)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "userservice.json"
DATASOURCE_UID = "userservice-prometheus"

# The names the service exports, the dashboard and the alert rules read (`up` is
# Prometheus' own).
METRIC_NAMES = frozenset(
    {
        "userservice_http_request_duration_seconds",
        "userservice_logins_total",
        "userservice_tokens_issued_total",
        "userservice_refresh_token_reuse_total",
        "userservice_throttled_total",
        "userservice_password_hash_queue_seconds",
        "userservice_db_pool_connections_in_use",
        "userservice_db_pool_connections_limit",
        "userservice_mail_outbox_messages",
        "userservice_mail_outbox_oldest_age_seconds",
        "up",
    }
)
HISTOGRAMS = frozenset(
    {"userservice_http_request_duration_seconds", "userservice_password_hash_queue_seconds"}
)

# Grafana's interval variables, as an instant query evaluates them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
}

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "bool", "offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run scripts/system-deps.sh (Debian package prometheus)"
    return found


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads, histogram suffixes removed."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for name in _IDENTIFIER.findall(text):
        if name.lower() in _KEYWORDS:
            continue
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard, with Grafana's
    variables replaced so Prometheus evaluates it as an instant query."""
    queries = []
    for panel in panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries
