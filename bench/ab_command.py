"""What every `python -m bench.ab*` command shares: its options, the harness's own
environment, and (for one build under two environment sets, bench/ab_envs.py) the
rounds, the printed medians and the JSON document."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.ab_envs import Comparison, Run, compare, summarise
from bench.ab_trees import databases
from bench.plan import SMOKE, Plan
from bench.wrk import WrkFailed, wrk_path


def arguments(
    prog: str, description: str, known: Sequence[str], *, rounds: int, seconds: int, default: str
) -> argparse.ArgumentParser:
    """The options every `python -m bench.ab*` command shares."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--seconds", type=int, default=seconds, help="each measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of discarded load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=1000, help="seeded users per database")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--scenarios", default=default, help=f"comma-separated, of: {', '.join(known)}"
    )
    parser.add_argument("--json", type=Path, help="write the medians (and every run) here")
    return parser


def parse(
    parser: argparse.ArgumentParser, known: Sequence[str], argv: Sequence[str] | None
) -> argparse.Namespace:
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in args.scenarios if name not in known]
    if unknown or not args.scenarios:
        parser.error(f"--scenarios: unknown {unknown}; known: {', '.join(known)}")
    if min(args.rounds, args.seconds, args.connections, args.users) < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds, --connections and --users must be positive")
    return args


def only_harness_settings(bytecode_cache: Path) -> None:
    """A developer's USERSERVICE_DATABASE_URL must never point the seeding at a real
    database; every process caches its bytecode as an installed package has it."""
    for key in [k for k in os.environ if k.startswith("USERSERVICE_")]:
        del os.environ[key]
    bytecode_cache.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)


def wrk_missing(prog: str) -> bool:
    try:
        wrk_path()
    except WrkFailed as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return True
    return False


def run_rounds(
    prog: str,
    comparison: Comparison,
    args: argparse.Namespace,
    *,
    table: Callable[[dict[str, dict[str, Any]]], str],
    progress: Callable[[Run], None],
    before_round: Callable[[], None] = lambda: None,
) -> int:
    """`args.rounds` rounds of `comparison` on fresh databases; prints each run and
    then the medians, writes the JSON document to `args.json` when given. 1 when any
    request failed (its figures do not count), else 0."""
    plan: Plan = replace(
        SMOKE,
        mode=prog.rsplit(".", 1)[-1],
        connections=(args.connections,),
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        configs=(),
    )
    backend = "postgresql" if args.postgres else "sqlite"
    work = Path(tempfile.mkdtemp(prefix=f"bench-{comparison.name}-"))
    load_before = os.getloadavg()
    try:
        with databases(args.postgres, work) as fresh:
            runs = compare(
                comparison,
                plan,
                fresh,
                work,
                work,
                backend=backend,
                users=args.users,
                rounds=args.rounds,
                scenarios=args.scenarios,
                progress=progress,
                before_round=before_round,
            )
    except BaseException:
        print(f"{prog}: failed; databases and server logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    summary = summarise(comparison, runs, args.scenarios)
    name = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nmedians over {args.rounds} rounds, {name}, {args.connections} connections:")
    print(table(summary))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        document = {
            "backend": backend,
            "sides": list(comparison.sides),
            "settings": settings,
            # Other work on the machine skews every run: both ends are recorded.
            "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
            "scenarios": summary,
            "runs": [asdict(run) for run in runs],
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if any(entry["errors"] for entry in summary.values()):
        print(f"{prog}: some requests failed; those figures do not count", file=sys.stderr)
        return 1
    return 0
