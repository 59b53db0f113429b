"""The fleet (started once for every check in this directory: PostgreSQL, Redis,
three replicas of two workers, nginx), the Prometheus scraping it, and the report
table of the cluster checks: each check records its figures, and at the end the table
(check | result | figures) is printed and written to $USERSERVICE_CLUSTER_REPORT
(default artifacts/cluster-report.md)."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.fleet import Fleet
from tests.support.processes import alive
from tests.support.prometheus import Prometheus, PrometheusError
from tests.support.replica import FleetError


@dataclass
class Row:
    check: str
    result: str
    figures: dict[str, object]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        lines = ["| check | result | figures |", "|---|---|---|"]
        for row in self.rows:
            figures = ", ".join(f"{k}={_show(v)}" for k, v in row.figures.items())
            lines.append(f"| {row.check} | {row.result} | {figures} |")
        return "\n".join(lines) + "\n"


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "/")


REPORT = pytest.StashKey[Report]()
OUTCOME = pytest.StashKey[str]()


def _report(config: pytest.Config) -> Report:
    if REPORT not in config.stash:
        config.stash[REPORT] = Report()
    return config.stash[REPORT]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        item.stash[OUTCOME] = "error" if report.when == "setup" else report.outcome
    return report


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """What a check measured; recorded in the report with the check's outcome."""
    found: dict[str, object] = {}
    yield found
    check = request.node.name.removeprefix("test_")
    result = request.node.stash.get(OUTCOME, "error")
    _report(request.config).rows.append(Row(check, result, found))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if REPORT not in config.stash or not config.stash[REPORT].rows:
        return
    table = config.stash[REPORT].table()
    default = config.rootpath / "artifacts" / "cluster-report.md"
    path = Path(os.environ.get("USERSERVICE_CLUSTER_REPORT") or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Cluster checks\n\n" + table)
    terminalreporter.section("cluster report")
    terminalreporter.write(table)
    terminalreporter.write_line(f"(written to {path})")


@pytest.fixture(scope="package")
def fleet() -> Iterator[Fleet]:
    fleet = Fleet(replicas=3, workers=2)
    try:
        fleet.start()
    except FleetError as exc:
        # Never a silent skip: the fleet's parts are installed on every test machine.
        pytest.fail(f"the fleet did not start: {exc}", pytrace=False)
    try:
        yield fleet
    finally:
        running = fleet.pids()
        fleet.stop()
    # Stopped by PID: nothing the fleet ran may outlive it (workers included).
    deadline = time.monotonic() + 10
    while (left := [pid for pid in running if alive(pid)]) and (time.monotonic() < deadline):
        time.sleep(0.1)
    assert not left, f"processes of the fleet still running after stop(): {left}"


@pytest.fixture(scope="package")
def prometheus(fleet: Fleet) -> Iterator[Prometheus]:
    """Prometheus scraping every replica's metrics port each second (stopped before
    the fleet, by its PID, whatever the checks did)."""
    server = Prometheus(fleet.metrics_targets)
    try:
        server.start()
    except PrometheusError as exc:
        pytest.fail(f"Prometheus did not start: {exc}", pytrace=False)
    pid = server.process.pid if server.process is not None else 0
    try:
        yield server
    finally:
        server.stop()
    assert not alive(pid), f"Prometheus (PID {pid}) still running after stop()"
