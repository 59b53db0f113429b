"""One build under two environment sets, measured in turns round after round: the
server's CPU per request (utime + stime of every server process from /proc, which a
busy machine disturbs far less than req/s), req/s and p99 per side and round, and
the change of the candidate side against the baseline per round (the two runs of a
round share the machine's moment) with its median. What one side's setting costs,
e.g. throttle counters in Redis (bench/throttle_cost.py) or metrics and JSON logs
(bench/observability_cost.py); `make bench` and the `python -m bench.ab_*` commands
use it.

Each round seeds a fresh database (N users, an admin, a confidential client) and
starts one server per side on it; each scenario then runs on each side in turn (the
order alternates by round and by scenario), a discarded warm-up, then wrk."""

from __future__ import annotations

import statistics
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import seed
from bench.plan import WORKERS, Plan
from bench.report import Goal, Report, Row
from bench.scenarios import BACKENDS, Target, one_run
from bench.scenarios_service import Service, service_server
from bench.servers import (
    HOST,
    Server,
    cpu_seconds,
    descendants,
    free_port,
    peak_rss_mib,
    reset_peak,
)
from bench.stages import service_env
from bench.wrk import Traffic, run_wrk
from userservice.settings import Settings

APP = "userservice.app:create_app_from_env"
ROOT = Path(__file__).resolve().parent.parent

# Started right before a measured run, given the side's server; called after it with
# the run's request count, returns what was measured beside the server, per request.
Probe = Callable[[Server], Callable[[int], dict[str, float]]]


@dataclass(frozen=True)
class Run:
    round: int
    side: str
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float  # every process of the side's server, every thread
    errors: int
    extra: dict[str, float] = field(default_factory=dict)  # the probe's figures


@dataclass(frozen=True)
class Comparison:
    """What differs between the sides, and how each is served and measured."""

    name: str  # the rows' system, and their scenario ids: <scenario>-<name>-<side>
    sides: tuple[str, str]  # the baseline, then the side whose cost is measured
    env: Callable[[str], Mapping[str, str]]  # a side's settings over the bench's own
    traffic: Mapping[str, Callable[[Service], Traffic]]
    # False: one uvicorn process; True: `userservice serve --no-tls --workers 2` as
    # `make bench` serves (the layout whose per-request work is measured).
    serve: bool = False
    tolerance_pct: float = 5.0  # the candidate may cost this much more CPU per request
    probe: Probe | None = None
    extra_keys: tuple[str, ...] = ()  # the probe's figures, summarised per side
    note: Callable[[Run], str] = lambda _run: ""  # a row's notes after the round's

    def order(self, round_index: int, scenario_index: int) -> tuple[str, ...]:
        """A, B then B, A: drift and warm caches favour neither side."""
        even = (round_index + scenario_index) % 2 == 0
        return self.sides if even else self.sides[::-1]


class OneProcess(Server):
    """A server without --workers: the process itself serves, so its RSS is the
    worker's."""

    def _pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def reset_peak_rss(self) -> None:
        self.peak_resettable = all([reset_peak(pid) for pid in self._pids()])

    def peak_rss_per_worker(self) -> list[float]:
        return [round(peak_rss_mib(pid), 1) for pid in self._pids()]


class WholeTree(Server):
    """CPU of the master and of every process below it, not only its workers."""

    def cpu_seconds(self) -> float:
        if self.process is None:
            return 0.0
        return sum(cpu_seconds(pid) for pid in [self.process.pid, *descendants(self.process.pid)])


def _server(comparison: Comparison, env: dict[str, str], work: Path, log: Path) -> Server:
    if comparison.serve:
        plain = service_server(env, work, log, None)
        # Every process of the server counts, whatever `serve` starts beside its
        # workers (a metrics listener's work is the server's too).
        server = WholeTree(
            plain.name, plain.argv, plain.port, "/readyz", env=env, cwd=work, log=log
        )
        server.start(expected_workers=WORKERS)
        return server
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", APP, "--host", HOST]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    # One process, no --workers: its PID's CPU (all threads) is the server's.
    one = OneProcess(comparison.name, argv, port, "/readyz", env=env, cwd=ROOT, log=log)
    one.start(expected_workers=0)
    return one


@contextmanager
def _pair(
    comparison: Comparison, plan: Plan, url: str, work: Path, logs: Path, backend: str, users: int
) -> Iterator[dict[str, Service]]:
    """Both sides serving one freshly seeded database; stopped by PID on exit."""
    tag = uuid.uuid4().hex[:8]
    data_dir = work / f"{comparison.name}-{tag}"
    data_dir.mkdir(parents=True)
    env = service_env(url, data_dir, work)
    seed.migrate(env)
    seed.seed_users(url, users, seed.precomputed_hash(Settings(_env_file=None)))
    seed.create_admin(env)
    client_id, client_secret = seed.create_confidential_client(env)
    with ExitStack() as stack:
        services: dict[str, Service] = {}
        for side in comparison.sides:
            log = logs / f"{comparison.name}-{side}-{backend}.log"
            server = _server(comparison, {**env, **comparison.env(side)}, work, log)
            stack.callback(server.stop)
            target = Target(server, comparison.name, backend, users)
            report = Report(comparison.name, "")
            services[side] = Service(report, plan, target, client_id, client_secret, logs)
        yield services


def measure_one(
    comparison: Comparison, svc: Service, scenario: str, plan: Plan, row_scenario: str
) -> tuple[Row, dict[str, float]]:
    """A discarded warm-up, then one wrk run: the row, and the probe's figures."""
    traffic = comparison.traffic[scenario](svc)
    connections = plan.connections[0]
    server = svc.target.server
    if plan.warmup_seconds:
        server.wait_idle()
        run_wrk(server.base_url, traffic, connections=connections, seconds=plan.warmup_seconds)
    server.wait_idle()
    finish = comparison.probe(server) if comparison.probe else None
    row = one_run(svc.target, row_scenario, traffic, connections, plan.seconds)
    return row, finish(max(1, row.requests)) if finish else {}


def compare(
    comparison: Comparison,
    plan: Plan,
    fresh: Callable[[], str],
    work: Path,
    logs: Path,
    *,
    backend: str,
    users: int,
    rounds: int,
    scenarios: Sequence[str],
    report: Report | None = None,
    progress: Callable[[Run], None] | None = None,
    before_round: Callable[[], None] = lambda: None,
) -> list[Run]:
    """`rounds` rounds, each on a fresh database (`fresh()` makes one) seeded with
    `users` users and served by both sides; each scenario on each side in turn.
    Rows go to `report` as `<scenario>-<name>-<side>`, when given."""
    runs: list[Run] = []
    for round_index in range(rounds):
        before_round()
        with _pair(comparison, plan, fresh(), work, logs, backend, users) as services:
            for index, scenario in enumerate(scenarios):
                for side in comparison.order(round_index, index):
                    name = f"{scenario}-{comparison.name}-{side}"
                    row, extra = measure_one(comparison, services[side], scenario, plan, name)
                    run = Run(
                        round=round_index + 1,
                        side=side,
                        scenario=scenario,
                        rps=row.rps,
                        p50_ms=row.p50_ms,
                        p99_ms=row.p99_ms,
                        cpu_us_per_request=(row.cpu_ms_per_request or 0.0) * 1000,
                        errors=row.errors,
                        extra=extra,
                    )
                    runs.append(run)
                    if report is not None:
                        note = comparison.note(run)
                        row.notes = f"round {run.round} of {rounds}, interleaved" + (
                            f"; {note}" if note else ""
                        )
                        report.add(row)
                    if progress is not None:
                        progress(run)
    return runs


def summarise(
    comparison: Comparison, runs: Sequence[Run], scenarios: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per scenario: medians per side, and the change of the candidate against the
    baseline in server CPU per request, per round with its median."""
    baseline, candidate = comparison.sides
    summary: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        mine = [r for r in runs if r.scenario == scenario]
        entry: dict[str, Any] = {"errors": sum(r.errors for r in mine)}
        for side in comparison.sides:
            those = [r for r in mine if r.side == side]
            figures = {
                key: [getattr(r, key) for r in those]
                for key in ("cpu_us_per_request", "rps", "p99_ms")
            }
            figures |= {
                key: [r.extra.get(key, 0.0) for r in those] for key in comparison.extra_keys
            }
            entry[side] = {key: round(statistics.median(v), 2) for key, v in figures.items() if v}
        cpu = {(r.round, r.side): r.cpu_us_per_request for r in mine}
        paired = [
            (cpu[n, candidate] / cpu[n, baseline] - 1) * 100
            for n in sorted({r.round for r in mine})
            if cpu.get((n, baseline)) and (n, candidate) in cpu
        ]
        median_change = statistics.median(paired) if paired else 0.0
        entry["paired_change_pct"] = [round(p, 1) for p in paired]
        entry["cpu_change_pct"] = round(median_change, 1)
        entry["within_tolerance"] = median_change <= comparison.tolerance_pct
        summary[scenario] = entry
    return summary


def paired_goals(
    report: Report, system: str, scenario: str, sides: tuple[str, str], what: str
) -> list[Goal]:
    """The goal of an A/B stage, what one side's setting costs: the median over rounds of
    each round's change in server CPU per request of `<scenario>-<system>-<side>`
    (the two runs of a round are measured in turns, so they share the machine's
    moment), per backend measured."""
    goals: list[Goal] = []
    for backend in sorted({r.backend for r in report.rows if r.system == system}):
        rows = [r for r in report.rows if r.system == system and r.backend == backend]
        base, cost = (
            [r for r in rows if r.scenario == f"{scenario}-{system}-{side}"] for side in sides
        )
        goal = f"{BACKENDS[backend]}: {what}"
        changes = [
            (b.cpu_ms_per_request / a.cpu_ms_per_request - 1) * 100
            for a, b in zip(base, cost, strict=False)
            if a.cpu_ms_per_request and b.cpu_ms_per_request
        ]
        if not changes:
            goals.append(Goal(goal, "not measured", "≤ +5 % server CPU/request", None))
            continue
        change = statistics.median(changes)
        rounds = ", ".join(f"{c:+.1f}" for c in changes)
        measured = (
            f"{change:+.1f} % server CPU/request (median of {len(changes)} rounds: {rounds}); "
            f"{statistics.median(r.cpu_ms_per_request or 0 for r in base):.3f} → "
            f"{statistics.median(r.cpu_ms_per_request or 0 for r in cost):.3f} ms"
        )
        goals.append(Goal(goal, measured, "≤ +5 % server CPU/request", change <= 5.0, change))
    return goals
