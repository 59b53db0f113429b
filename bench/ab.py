"""A/B of the hot goal rows of `make bench` between two source trees, interleaved on
one machine: the server's own CPU time per request (from /proc, which a busy
machine disturbs far less than throughput) and req/s, per round and as medians.
For a change that must not make the service slower, beside `make bench`:

    git worktree add /tmp/before <rev>
    .venv/bin/python -m bench.ab /tmp/before .                          # SQLite
    .venv/bin/python -m bench.ab --postgres /tmp/before . --json ab.json

Each round gives each tree a fresh database migrated and seeded by that tree's own
CLI (N users, an admin, a confidential client) and one uvicorn process without TLS
on 127.0.0.1. Then, scenario by scenario, each tree in turn (the order alternates
by round and by scenario, so neither side always goes first): the traffic of
`make bench`'s row of that name (bench/scenarios_service.py), a discarded warm-up,
then wrk for --seconds. Every server is stopped by its PID."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import seed
from bench.ab_command import arguments, only_harness_settings, parse
from bench.ab_trees import check_tree, databases, running
from bench.plan import SMOKE, Plan
from bench.run import BYTECODE_CACHE
from bench.scenarios_service import SCENARIOS as SERVICE_SCENARIOS
from bench.scenarios_service import Service
from bench.wrk import WrkFailed, wrk_path
from userservice.settings import Settings

SIDES = ("before", "after")
# The bar for a change that keeps the speed: no goal row may cost more server CPU
# per request than this (raw req/s drift more than that on this machine).
CPU_TOLERANCE_PCT = 5.0
ADMIN_PAGE = 50  # the admin list scenario reads pages of 50 and needs a second page


def _login(svc: Service) -> None:
    # Without the argon2id limit runs beside it that `make bench`'s login row has.
    traffic = svc.login_traffic()
    svc.measure("login", lambda _c: traffic, "argon2id-bound: one verify per request")


# The hot goal rows, by `make bench`'s scenario ids; the password grant last (it is
# hashing-bound, the noisiest).
SCENARIOS: dict[str, Callable[[Service], None]] = {
    "me-bearer": SERVICE_SCENARIOS["me-bearer"],
    "introspect": SERVICE_SCENARIOS["introspect"],
    "client-credentials": SERVICE_SCENARIOS["client-credentials"],
    "refresh": SERVICE_SCENARIOS["refresh"],
    "admin-list-deep": SERVICE_SCENARIOS["admin-list-deep"],
    "login": _login,
}


@dataclass(frozen=True)
class Run:
    round: int
    side: str  # before | after
    scenario: str
    rps: float
    cpu_us_per_request: float
    errors: int


def order(round_index: int, scenario_index: int) -> tuple[str, ...]:
    """A,B then B,A: by round and by scenario, so drift and warm caches favour
    neither side."""
    return SIDES if (round_index + scenario_index) % 2 == 0 else SIDES[::-1]


def measure(svc: Service, scenario: str, round_index: int, side: str) -> Run:
    SCENARIOS[scenario](svc)
    row = svc.report.rows[-1]
    assert row.scenario == scenario and row.cpu_ms_per_request is not None
    return Run(round_index + 1, side, scenario, row.rps, row.cpu_ms_per_request * 1000, row.errors)


def summarise(runs: Sequence[Run], scenarios: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Medians per scenario and side; the CPU change of after against before."""
    summary: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        entry: dict[str, Any] = {"errors": 0}
        for side in SIDES:
            mine = [r for r in runs if r.scenario == scenario and r.side == side]
            entry[side] = {
                "cpu_us_per_request": round(
                    statistics.median(r.cpu_us_per_request for r in mine), 1
                ),
                "rps": round(statistics.median(r.rps for r in mine), 1),
            }
            entry["errors"] += sum(r.errors for r in mine)
        before = entry["before"]["cpu_us_per_request"]
        change = (entry["after"]["cpu_us_per_request"] / before - 1) * 100 if before else 0.0
        entry["cpu_change_pct"] = round(change, 1)
        paired = _paired_change(runs, scenario)
        entry["paired_change_pct"] = round(paired, 1)
        # The verdict uses the pairs: the two runs of one round share the machine's
        # moment, so their ratio cancels the drift (10-50 % within minutes here)
        # that the medians of each side keep.
        entry["within_tolerance"] = paired <= CPU_TOLERANCE_PCT
        summary[scenario] = entry
    return summary


def _paired_change(runs: Sequence[Run], scenario: str) -> float:
    """The median over rounds of after/before CPU per request, in per cent."""
    cpu = {(r.round, r.side): r.cpu_us_per_request for r in runs if r.scenario == scenario}
    ratios = [
        cpu[number, "after"] / cpu[number, "before"] - 1
        for number in sorted({number for number, _side in cpu})
        if cpu.get((number, "before")) and (number, "after") in cpu
    ]
    return statistics.median(ratios) * 100 if ratios else 0.0


def table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'scenario':<20} {'before µs/req':>13} {'after µs/req':>12} {'change':>8} {'paired':>8} "
        f"{'before req/s':>12} {'after req/s':>11} {'errors':>6}  CPU ≤ +{CPU_TOLERANCE_PCT:g} %"
    ]
    for scenario, e in summary.items():
        before, after = e["before"], e["after"]
        verdict = "ok" if e["within_tolerance"] else "SLOWER"
        lines.append(
            f"{scenario:<20} {before['cpu_us_per_request']:>13.1f} "
            f"{after['cpu_us_per_request']:>12.1f} {e['cpu_change_pct']:>+7.1f}% "
            f"{e['paired_change_pct']:>+7.1f}% "
            f"{before['rps']:>12,.0f} {after['rps']:>11,.0f} {e['errors']:>6}  {verdict}"
        )
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    known = list(SCENARIOS)
    parser = arguments("python -m bench.ab", description, known, rounds=4, seconds=6, default="")
    parser.add_argument("before", type=Path, help="the tree before the change")
    parser.add_argument("after", type=Path, help="the tree after it (may be the same)")
    parser.set_defaults(scenarios=",".join(known))
    args = parse(parser, known, argv)
    if args.users <= ADMIN_PAGE:
        parser.error(f"--users must be over {ADMIN_PAGE}: the admin list reads a second page")
    return args


def _rounds(args: argparse.Namespace, trees: dict[str, Path], work: Path) -> list[Run]:
    plan: Plan = replace(
        SMOKE,
        mode="ab",
        connections=(args.connections,),
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        configs=(),
    )
    backend = "postgresql" if args.postgres else "sqlite"
    password_hash = seed.precomputed_hash(Settings(_env_file=None))
    runs: list[Run] = []
    with databases(args.postgres, work) as fresh:
        for round_index in range(args.rounds):
            with ExitStack() as stack:
                services = {
                    side: stack.enter_context(
                        running(
                            tree,
                            fresh(),
                            work,
                            plan,
                            backend=backend,
                            users=args.users,
                            password_hash=password_hash,
                        )
                    )
                    for side, tree in trees.items()
                }
                for index, scenario in enumerate(args.scenarios):
                    for side in order(round_index, index):
                        run = measure(services[side], scenario, round_index, side)
                        runs.append(run)
                        print(
                            f"round {run.round} {side:<6} {scenario:<20} {run.rps:9.1f} req/s "
                            f"{run.cpu_us_per_request:8.1f} µs CPU/request  errors {run.errors}",
                            flush=True,
                        )
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        wrk_path()
    except WrkFailed as exc:
        print(f"bench.ab: {exc}", file=sys.stderr)
        return 2
    only_harness_settings(BYTECODE_CACHE)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for side, tree in trees.items():
        check_tree(tree)
        print(f"{side}: {tree}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    try:
        runs = _rounds(args, trees, work)
    except BaseException:
        print(f"bench.ab: failed; databases and server logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    summary = summarise(runs, args.scenarios)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nmedians over {args.rounds} rounds, {backend}, {args.connections} connections:")
    print(table(summary))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("before", "after", "json")}
        document = {
            **{side: str(tree) for side, tree in trees.items()},
            "backend": "postgresql" if args.postgres else "sqlite",
            "settings": settings,
            "scenarios": summary,
            "runs": [asdict(run) for run in runs],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    if any(entry["errors"] for entry in summary.values()):
        print("bench.ab: some requests failed; those figures do not count", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
