"""O9: the Prometheus of the cluster test scrapes every replica of the fleet
(tests/cluster/conftest.py), its sums over replicas and workers are exact, and every
query of the shipped Grafana dashboard answers from the fleet. These checks take
counter deltas between scrapes made after a moment, so they hold whatever the checks
before them did (a replica restarted from zero included)."""

from __future__ import annotations

import time

import pytest

from tests.support.cluster_calls import register
from tests.support.cluster_dashboard import (
    DashboardError,
    instant,
    load,
    queries,
    series,
    template_variables,
)
from tests.support.cluster_metrics import LOGINS, exercise, logins, password_logins
from tests.support.fleet import Fleet
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.cluster

LIMIT = 5  # USERSERVICE_LOGIN_LIMIT_PER_ACCOUNT of the fleet: 5/minute


def test_o9_prometheus_sums_logins_over_every_replica(
    fleet: Fleet, prometheus: Prometheus, figures: dict[str, object]
) -> None:
    """O9: Prometheus scrapes every replica (up == 1, each one's counts present), and
    the PromQL sum of sign-ins over replicas and workers rises by exactly the
    successful and failed password-grant sign-ins made through nginx."""
    emails = [f"o9-{i}@example.com" for i in range(3)]
    for email in emails:
        register(fleet, email)
    pids = fleet.pids()
    before = logins(prometheus)
    answers = password_logins(fleet, emails, right=3, wrong=2)
    done = logins(prometheus).since(before)
    up = prometheus.targets_up()
    present = prometheus.values(f"count by (instance) ({LOGINS})", "instance")
    figures.update(
        answers=answers,
        promql_logins=done.by_outcome,
        per_replica=sorted(done.by_instance.values()),
        targets_up=sum(up.values()),
    )
    assert answers == {"right:200": 9, "wrong:400": 6}, answers
    # A replica restarted meanwhile would have reset its counters: not a fair sum.
    assert fleet.pids() == pids
    assert done.by_outcome == {"success": 9.0, "failure": 6.0}
    assert up == dict.fromkeys(fleet.metrics_targets, 1.0)
    assert set(present) == set(fleet.metrics_targets), present
    assert set(done.by_instance) == set(fleet.metrics_targets), done.by_instance


def test_o9_every_dashboard_query_returns_data(
    fleet: Fleet, prometheus: Prometheus, figures: dict[str, object]
) -> None:
    """O9: every PromQL query of the shipped Grafana dashboard, as Grafana sends it
    for the last 5 minutes, returns data from the fleet after a workload touching
    every panel (the checks before this one add to it)."""
    try:
        dashboard = load()
    except DashboardError as exc:
        pytest.fail(str(exc), pytrace=False)
    variables = template_variables(dashboard)
    found = [(q, instant(q.expr, variables)) for q in queries(dashboard)]
    figures["workload"] = workload = exercise(fleet, "o9-dashboard", LIMIT)
    assert workload == {
        "guess:400": LIMIT,
        "guess:429": 1,
        "me:200": 1,
        "password:200": 1,
        "refresh:200": 1,
        "replay:400": 1,
        "unmatched:404": 1,
    }, workload
    # Two scrape rounds after the workload: a rate needs two samples of a new series.
    prometheus.scraped_since(time.time())
    prometheus.scraped_since(time.time())
    empty = [f"{q.panel} [{q.ref}]" for q, promql in found if not prometheus.query(promql)]
    # A fallback such as `or vector(0)` answers without the series: each must exist.
    names = sorted({name for _, promql in found for name in series(promql)})
    absent = [name for name in names if not prometheus.query(f'count({{__name__="{name}"}})')]
    figures.update(queries=len(found), with_data=len(found) - len(empty), series=len(names))
    figures.update(empty=empty, absent=absent)
    assert found, "the dashboard has no PromQL query"
    assert not empty, [(q.panel, promql) for q, promql in found]
    assert not absent, absent
