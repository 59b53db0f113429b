"""Results: rows, start-up facts and goal checks, written as JSON and Markdown."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    system: str  # service | ceiling | peer | argon2
    scenario: str  # stable id, see bench/plan.py TITLES
    label: str  # for people: "service SQLite 1k: /users/me Bearer"
    backend: str  # sqlite | postgresql | "" (no database)
    users: int
    tls: bool
    connections: int | None
    offered_rps: float | None  # paced runs: the rate wrk's delay() aimed at
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mib_per_worker: list[float]
    cpu_ms_per_request: float | None
    notes: str = ""
    # Nonzero wrk error counts by kind: connect/read/write/timeout, status (> 399),
    # bad (a 2xx with the wrong body), empty (the refresh-token queue ran dry).
    error_kinds: dict[str, int] = field(default_factory=dict)
    # Through a proxy to several replicas: the requests each replica served.
    per_replica_requests: list[int] = field(default_factory=list)


@dataclass
class Startup:
    system: str
    backend: str
    users: int
    tls: bool
    label: str
    ready_seconds: list[float]  # every start of this server: spawn to first /readyz 200
    idle_rss_mib_per_worker: list[float]  # VmRSS after ready, before any load (main start)
    # One more start with no bytecode cache at all (as this machine's environment and
    # the Dockerfile run it: PYTHONDONTWRITEBYTECODE=1, no compiled .pyc installed).
    uncached_ready_seconds: float | None = None


@dataclass
class Goal:
    goal: str
    measured: str
    target: str
    met: bool | None  # None: not measured in this run (e.g. smoke has no 1M users)
    value: float | None = None
    stretch_met: bool | None = None


@dataclass
class Report:
    mode: str
    command: str
    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # env given to the service
    rows: list[Row] = field(default_factory=list)
    startups: list[Startup] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # wall time per phase

    def add(self, row: Row) -> None:
        self.rows.append(row)
        conns = row.connections or "-"
        print(
            f"  {row.label:<52} c={conns!s:<4} {row.rps:>9.1f} req/s  p50 {row.p50_ms:8.2f} ms"
            f"  p99 {row.p99_ms:8.2f} ms  errors {row.errors}",
            flush=True,
        )

    def add_startup(self, startup: Startup) -> None:
        self.startups.append(startup)
        ready = ", ".join(f"{s:.2f}" for s in startup.ready_seconds)
        print(
            f"  {startup.label:<52} ready in {ready} s; idle RSS/worker "
            f"{startup.idle_rss_mib_per_worker} MiB",
            flush=True,
        )

    def write(self, out: Path) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out / "results.json", out / "results.md"
        json_path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        md_path.write_text(markdown(self))
        return json_path, md_path


def _rate(row: Row) -> str:
    conns = str(row.connections) if row.connections is not None else "-"
    if row.offered_rps is not None:
        conns += f" paced {row.offered_rps:,.0f}/s"
    return conns


def _result(goal: Goal) -> str:
    if goal.met is None:
        return "n/a"
    text = "met" if goal.met else "**missed**"
    if goal.stretch_met is not None:
        text += " (stretch met)" if goal.stretch_met else " (stretch missed)"
    return text


def markdown(report: Report) -> str:
    facts = ", ".join(f"{key}: {value}" for key, value in report.machine.items())
    lines = [
        f"Mode: {report.mode}; `{report.command}`; {report.seconds / 60:.1f} min.",
        f"Machine: {facts}.",
        "",
        "| scenario | conns | req/s | p50 ms | p99 ms | errors "
        "| peak RSS/worker MiB | CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in report.rows:
        cpu = f"{r.cpu_ms_per_request:.3f}" if r.cpu_ms_per_request is not None else "-"
        rss = " / ".join(f"{v:.0f}" for v in r.peak_rss_mib_per_worker)
        lines.append(
            f"| {r.label} | {_rate(r)} | {r.rps:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.errors} | {rss} | {cpu} |"
        )
    lines += [
        "",
        "| server start | spawn → /readyz 200, s (bytecode cached) | same, no bytecode cache "
        "| idle RSS/worker MiB |",
        "|---|---|---|---|",
    ]
    for s in report.startups:
        ready = ", ".join(f"{v:.2f}" for v in s.ready_seconds)
        cold = f"{s.uncached_ready_seconds:.2f}" if s.uncached_ready_seconds else "-"
        rss = " / ".join(f"{v:.0f}" for v in s.idle_rss_mib_per_worker)
        lines.append(f"| {s.label} | {ready} | {cold} | {rss} |")
    lines += ["", "| goal | measured | target | result |", "|---|---|---|---|"]
    lines += [f"| {g.goal} | {g.measured} | {g.target} | {_result(g)} |" for g in report.goals]
    if report.settings:
        given = ", ".join(f"`{k}={v}`" for k, v in report.settings.items())
        lines += ["", f"Service environment: {given}."]
    notes = [f"- {r.label}: {r.notes}" for r in report.rows if r.notes]
    if notes:
        lines += ["", "Notes:", *dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def machine_facts() -> dict[str, Any]:
    wrk = shutil.which("wrk")
    version = ""
    if wrk:
        done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        version = (done.stdout or done.stderr).split(" [")[0].strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": version,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
