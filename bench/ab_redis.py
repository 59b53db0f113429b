"""Redis against in-memory throttle counters, interleaved on one machine: the password
grant's server CPU per request (the whole process, argon2id threads included) and
req/s with `USERSERVICE_REDIS_URL` set and unset, per round and as medians, plus the
Redis server's own CPU and commands per request:

    .venv/bin/python -m bench.ab_redis                       # SQLite, 6 rounds
    .venv/bin/python -m bench.ab_redis --postgres --json ab-redis.json

Each round seeds a fresh database (N users, an admin, a confidential client) and
starts two uvicorn processes of this tree on it (127.0.0.1, no TLS, no --workers):
one counting in a throwaway `redis-server` on loopback, one in its own memory. Then
each scenario runs on each side in turn (the order alternates by round and by
scenario), a discarded warm-up, then wrk for --seconds. The verdict is the median
over rounds of the per-round change (redis / memory - 1), against +5 %."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.ab_trees import databases
from bench.plan import SMOKE, Plan
from bench.run import BYTECODE_CACHE
from bench.throttle_cost import CPU_TOLERANCE_PCT, SIDES, TRAFFIC, Run, compare, summarise
from bench.wrk import WrkFailed, wrk_path
from tests.support.redis import start_redis


def table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'scenario':<19} {'memory µs/req':>13} {'redis µs/req':>12} {'change':>8} "
        f"{'memory req/s':>12} {'redis req/s':>11} {'redis-server µs/req':>19} "
        f"{'cmds/req':>8} {'scripts/req':>11} {'errors':>6}  "
        f"CPU ≤ +{CPU_TOLERANCE_PCT:g} %  per round"
    ]
    for scenario, e in summary.items():
        memory, redis = e["memory"], e["redis"]
        verdict = "ok" if e["within_tolerance"] else "COSTLIER"
        rounds = ", ".join(f"{p:+.1f}" for p in e["paired_change_pct"])
        lines.append(
            f"{scenario:<19} {memory['cpu_us_per_request']:>13,.1f} "
            f"{redis['cpu_us_per_request']:>12,.1f} {e['cpu_change_pct']:>+7.1f}% "
            f"{memory['rps']:>12,.1f} {redis['rps']:>11,.1f} "
            f"{redis['redis_cpu_us_per_request']:>19,.1f} "
            f"{redis['redis_commands_per_request']:>8g} "
            f"{redis['redis_scripts_per_request']:>11g} {e['errors']:>6}  {verdict:<13} [{rounds}]"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab_redis", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10, help="each measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of discarded load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=1000, help="seeded users per database")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--scenarios",
        default="login",
        help=f"comma-separated, of: {', '.join(TRAFFIC)} (default: login)",
    )
    parser.add_argument("--json", type=Path, help="write the medians (and every run) here")
    return parser


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in args.scenarios if name not in TRAFFIC]
    if unknown or not args.scenarios:
        parser.error(f"--scenarios: unknown {unknown}; known: {', '.join(TRAFFIC)}")
    if min(args.rounds, args.seconds, args.connections, args.users) < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds, --connections and --users must be positive")
    return args


def _print(run: Run) -> None:
    print(
        f"round {run.round} {run.side:<6} {run.scenario:<19} {run.rps:9.1f} req/s "
        f"{run.cpu_us_per_request:9.1f} µs CPU/request  redis-server "
        f"{run.redis_cpu_us_per_request:7.1f} µs, {run.redis_commands_per_request:g} "
        f"commands ({run.redis_scripts_per_request:g} scripts)/request  errors {run.errors}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        wrk_path()
    except WrkFailed as exc:
        print(f"bench.ab_redis: {exc}", file=sys.stderr)
        return 2
    # Only the harness's settings: a developer's USERSERVICE_DATABASE_URL must never
    # point the seeding at a real database.
    for key in [k for k in os.environ if k.startswith("USERSERVICE_")]:
        del os.environ[key]
    BYTECODE_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    plan: Plan = replace(
        SMOKE,
        mode="ab-redis",
        connections=(args.connections,),
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        configs=(),
    )
    backend = "postgresql" if args.postgres else "sqlite"
    work = Path(tempfile.mkdtemp(prefix="bench-ab-redis-"))
    load_before = os.getloadavg()
    redis = start_redis()
    try:
        with databases(args.postgres, work) as fresh:
            runs = compare(
                plan,
                redis,
                fresh,
                work,
                work,
                backend=backend,
                users=args.users,
                rounds=args.rounds,
                scenarios=args.scenarios,
                progress=_print,
            )
    except BaseException:
        print(f"bench.ab_redis: failed; databases and server logs kept in {work}", file=sys.stderr)
        raise
    finally:
        redis.close()
    shutil.rmtree(work, ignore_errors=True)
    summary = summarise(runs, args.scenarios)
    name = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nmedians over {args.rounds} rounds, {name}, {args.connections} connections:")
    print(table(summary))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        document = {
            "backend": backend,
            "sides": list(SIDES),
            "settings": settings,
            "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
            "scenarios": summary,
            "runs": [asdict(run) for run in runs],
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if any(entry["errors"] for entry in summary.values()):
        print("bench.ab_redis: some requests failed; those figures do not count", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
