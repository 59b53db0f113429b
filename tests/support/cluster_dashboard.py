"""The shipped Grafana dashboard's PromQL, made runnable as instant queries: every
panel's targets (rows' nested panels too), with Grafana's variables replaced the way
Grafana would on a 5-minute view of the fleet ($__rate_interval and $__interval by
1m, $__range by 5m) and the dashboard's own template variables by "match anything"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/userservice.json"

BUILT_IN = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "__interval_ms": "60000",
    "__rate_interval_ms": "60000",
}

# $name, ${name} or ${name:format}, and the old [[name]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w-]+)?\]\]")
# A label matcher whose value holds a variable: label op "value".
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


# The service's own series a query reads (`or vector(0)` answers even without them).
SERIES = re.compile(r"\buserservice_\w+")


@dataclass(frozen=True)
class Query:
    panel: str
    ref: str
    expr: str


class DashboardError(ValueError):
    pass


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    if not path.exists():
        raise DashboardError(
            f"{path} is missing: the deployment ships no Grafana dashboard to check"
        )
    document: dict[str, Any] = json.loads(path.read_text())
    # An exported dashboard may be wrapped for the import API.
    inner = document.get("dashboard")
    return inner if isinstance(inner, dict) else document


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def queries(dashboard: dict[str, Any]) -> list[Query]:
    found = []
    for panel in _panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                found.append(Query(str(panel.get("title", "")), str(target.get("refId", "")), expr))
    return found


def template_variables(dashboard: dict[str, Any]) -> set[str]:
    return {str(v["name"]) for v in (dashboard.get("templating") or {}).get("list") or []}


def _name(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group)


def instant(expr: str, variables: set[str]) -> str:
    """`expr` with every variable replaced; a matcher on a template variable becomes a
    regex matcher on `.*` (Grafana's "All"). A variable the dashboard does not define
    is an error: Grafana would send the query with the `$name` left in it."""

    def value(match: re.Match[str]) -> str:
        name = _name(match)
        if name in BUILT_IN:
            return BUILT_IN[name]
        if name in variables:
            return ".*"
        raise DashboardError(f"${name} is neither Grafana's nor defined by the dashboard: {expr}")

    def matcher(match: re.Match[str]) -> str:
        label, op, text = match.groups()
        if not VARIABLE.search(text):
            return match.group(0)
        if op in ("=", "!="):
            op = {"=": "=~", "!=": "!~"}[op]
        return f'{label}{op}"{VARIABLE.sub(value, text)}"'

    return VARIABLE.sub(value, MATCHER.sub(matcher, expr))


def series(promql: str) -> set[str]:
    """The service's metric names a query reads."""
    return set(SERIES.findall(promql))
