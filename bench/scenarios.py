"""How one scenario is measured (warm-up, load points, pacing), and the scenarios
that are not the service: the FastAPI ceiling, the argon2id limit, the peer."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench import argon2_limit, seed
from bench.peer import runner as peer_runner
from bench.plan import TITLES, WORKERS, Plan, users_label
from bench.report import Report, Row
from bench.servers import Server, free_port
from bench.wrk import ERROR_KINDS, Load, Traffic, WrkRun, run_wrk
from userservice.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PACED_FRACTION = 0.70  # the p99 goals are "at 70 % of max throughput"
TOKEN_USERS = 16  # Bearer runs rotate over this many users' tokens, not one cached user
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "": ""}


@dataclass
class Target:
    """A running server and what its rows say about it."""

    server: Server
    system: str  # service | ceiling | peer
    backend: str = ""
    users: int = 0
    tls: bool = False

    @property
    def name(self) -> str:
        parts = [self.system, BACKENDS[self.backend]]
        parts += [users_label(self.users) if self.users else "", "TLS" if self.tls else ""]
        return " ".join(p for p in parts if p)

    def label(self, scenario: str) -> str:
        return f"{self.name}: {TITLES[scenario]}"


def row_of(
    target: Target,
    scenario: str,
    load: Load,
    connections: int,
    cpu_seconds: float | None,
    *,
    offered_rps: float | None = None,
    notes: str = "",
) -> Row:
    return Row(
        system=target.system,
        scenario=scenario,
        label=target.label(scenario),
        backend=target.backend,
        users=target.users,
        tls=target.tls,
        connections=connections,
        offered_rps=round(offered_rps, 1) if offered_rps is not None else None,
        seconds=round(load.seconds, 2),
        requests=load.requests,
        rps=round(load.rps, 1),
        p50_ms=round(load.p50_ms, 3),
        p99_ms=round(load.p99_ms, 3),
        errors=load.errors,
        peak_rss_mib_per_worker=target.server.peak_rss_per_worker(),
        cpu_ms_per_request=(
            round(cpu_seconds / load.requests * 1000, 3)
            if cpu_seconds is not None and load.requests
            else None
        ),
        notes=notes,
        error_kinds={k: load.detail[k] for k in ERROR_KINDS if load.detail.get(k)},
    )


def one_run(
    target: Target,
    scenario: str,
    traffic: Traffic,
    connections: int,
    seconds: float,
    *,
    delay_ms: float = 0.0,
    offered_rps: float | None = None,
    notes: str = "",
) -> Row:
    server = target.server
    server.wait_idle()
    server.reset_peak_rss()
    cpu_before = server.cpu_seconds()
    load = run_wrk(
        server.base_url, traffic, connections=connections, seconds=seconds, delay_ms=delay_ms
    )
    cpu = server.cpu_seconds() - cpu_before
    return row_of(target, scenario, load, connections, cpu, offered_rps=offered_rps, notes=notes)


def measure(
    report: Report,
    plan: Plan,
    target: Target,
    scenario: str,
    make: Callable[[int], Traffic],
    *,
    notes: str = "",
) -> float:
    """A discarded warm-up, then one run per connection count; returns the max req/s.
    `make(connections)` builds each run's traffic (refresh needs fresh tokens)."""
    top = max(plan.connections)
    if plan.warmup_seconds:
        target.server.wait_idle()
        run_wrk(target.server.base_url, make(top), connections=top, seconds=plan.warmup_seconds)
    best = 0.0
    for connections in plan.connections:
        row = one_run(target, scenario, make(connections), connections, plan.seconds, notes=notes)
        report.add(row)
        best = max(best, row.rps)
    return best


def paced(
    report: Report,
    plan: Plan,
    target: Target,
    scenario: str,
    traffic: Traffic,
    max_rps: float,
    *,
    fraction: float = PACED_FRACTION,
    notes: str = "",
) -> Row:
    """Closed-loop pacing (wrk delay(), not wrk2's open loop): each connection waits
    `delay` after every response, so one connection does 1 / (latency + delay) req/s.
    A calibration run measures the mean latency near this load (wrk's own figure,
    which excludes the pauses), then the delay is set so that connections x rate =
    fraction x max_rps. Achieved rates land within a few % of the aim; rows show both."""
    connections = plan.paced_connections
    goal = max(1.0, fraction * max_rps)
    cycle = connections / goal  # seconds per request per connection at the goal rate
    calibration = max(1, plan.warmup_seconds)
    target.server.wait_idle()
    probe = run_wrk(
        target.server.base_url,
        traffic,
        connections=connections,
        seconds=calibration,
        delay_ms=cycle * 1000,
    )
    delay_ms = max(0.0, cycle * 1000 - probe.mean_ms)
    row = one_run(
        target, scenario, traffic, connections, plan.seconds, delay_ms=delay_ms, offered_rps=goal
    )
    achieved = row.rps / max_rps * 100 if max_rps else 0.0
    row.notes = (
        f"closed loop: {connections} connections each pausing {delay_ms:.1f} ms between "
        f"requests (wrk delay()), aimed at {fraction:.0%} of max {max_rps:,.0f}/s, "
        f"got {achieved:.0f} %" + (f"; {notes}" if notes else "")
    )
    report.add(row)
    return row


def concurrent(
    target: Target,
    runs: Sequence[tuple[str, Traffic, int, float]],
    seconds: float,
) -> list[Row]:
    """Several wrk processes at once against one server (the login storm); the rows
    share the server's peak RSS and carry no CPU/request (it cannot be split)."""
    server = target.server
    server.wait_idle()
    server.reset_peak_rss()
    started = [
        (
            scenario,
            connections,
            WrkRun(
                server.base_url, traffic, connections=connections, seconds=seconds, delay_ms=delay
            ),
        )
        for scenario, traffic, connections, delay in runs
    ]
    loads = [(scenario, connections, run.result()) for scenario, connections, run in started]
    return [row_of(target, s, load, c, None) for s, c, load in loads]


def ceiling(
    report: Report,
    plan: Plan,
    logs: Path,
    *,
    backend: str = "",
    users: int = 0,
    notes: str = "",
) -> float:
    """The bare FastAPI ceiling. Once at the start of the run, and again beside each
    configuration's /users/me Bearer and introspection runs (`backend`, `users`;
    shorter runs): this machine's speed drifts by 10-25 % within minutes, so the
    goals compare those scenarios with the ceiling measured around them."""
    port = free_port()
    # bench/balanced.py: uvicorn with one socket per worker, like the service.
    argv = [sys.executable, "-m", "bench.balanced", "bench.ceiling_app:app", str(port)]
    argv.append(str(WORKERS))
    log = logs / f"ceiling{'-' + backend if backend else ''}.log"
    server = Server("ceiling", argv, port, "/ping", cwd=ROOT, log=log)
    server.start(expected_workers=WORKERS)
    if backend:
        plan = replace(
            plan,
            seconds=max(1, plan.seconds // 2),
            warmup_seconds=min(plan.warmup_seconds, 2),
        )
    try:
        target = Target(server, "ceiling", backend, users)
        return measure(report, plan, target, "ceiling", lambda _c: Traffic("/ping"), notes=notes)
    finally:
        server.stop()


def hashing_limit(
    report: Report,
    plan: Plan,
    *,
    backend: str = "",
    users: int = 0,
    seconds: float | None = None,
    when: str = "",
) -> None:
    """Raw argon2id verify throughput (no HTTP). Once at the start of the run, and
    again right before and after each configuration's login runs (`backend`,
    `users`, `when`): this machine's speed drifts by 10-25 % within minutes, so the
    login goal compares the logins with the limit measured beside them."""
    result = argon2_limit.measure(seconds or plan.hash_seconds)
    s = Settings(_env_file=None)
    params = f"m={s.argon2_memory_kib} KiB, t={s.argon2_time_cost}, p={s.argon2_parallelism}"
    beside = f" {BACKENDS[backend]} {users_label(users)} logins" if backend else ""
    report.add(
        Row(
            system="argon2",
            scenario="argon2",
            label=f"raw: {TITLES['argon2']}" + (f", {when}{beside}" if when else ""),
            backend=backend,
            users=users,
            tls=False,
            connections=None,
            offered_rps=None,
            seconds=round(result.seconds, 2),
            requests=result.verifies,
            rps=round(result.rps, 1),
            p50_ms=round(result.p50_ms, 3),
            p99_ms=round(result.p99_ms, 3),
            errors=result.errors,
            peak_rss_mib_per_worker=result.peak_rss_mib,
            cpu_ms_per_request=round(result.cpu_ms_per_verify, 3),
            notes=f"{params}; {result.processes} processes (one per core), no HTTP",
        )
    )


def peer(
    report: Report, plan: Plan, backend: str, users: int, database_url_async: str, logs: Path
) -> None:
    """The fastapi-users peer (bench/peer/) on its own database of the same engine
    with the same users, serving its own GET /users/me."""
    peer_runner.prepare_peer(database_url_async, users, seed.PASSWORD, logs)
    port = free_port()
    server = Server(
        "peer",
        peer_runner.peer_server_argv(port, WORKERS),
        port,
        peer_runner.READY_PATH,
        env=peer_runner.peer_env(database_url_async),
        cwd=ROOT,
        log=logs / f"peer-{backend}-{users}.log",
    )
    server.start(expected_workers=WORKERS)
    try:
        picked = random.sample(range(users), min(TOKEN_USERS, users))
        tokens = [
            peer_runner.peer_login(server.base_url, seed.user_email(i), seed.PASSWORD)
            for i in picked
        ]
        traffic = Traffic("/users/me", headers={"Authorization": "Bearer {line}"}, lines=tokens)
        target = Target(server, "peer", backend, users)
        notes = f"fastapi-users JWT (HS256), {len(tokens)} users' tokens in rotation"
        measure(report, plan, target, "peer-me", lambda _c: traffic, notes=notes)
    finally:
        server.stop()
