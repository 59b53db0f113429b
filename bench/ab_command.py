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


def options(
    prog: str,
    doc: str | None,
    known: Sequence[str],
    argv: Sequence[str] | None,
    *,
    extra: tuple[str, str] | None = None,
    **defaults: Any,
) -> argparse.Namespace:
    """The shared options parsed, with `defaults` (rounds, seconds, default) and an
    `extra` (option, help) of the command's own."""
    description = (doc or "").split("\n\n")[0]
    parser = arguments(prog, description, known, **defaults)
    if extra is not None:
        parser.add_argument(extra[0], help=extra[1])
    return parse(parser, known, argv)


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


# A column beside the standard ones: heading, the side it shows, summary key, format.
Column = tuple[str, str, str, str]


def table(
    comparison: Comparison, summary: dict[str, dict[str, Any]], extra: Sequence[Column] = ()
) -> str:
    """A line per scenario: both sides' CPU per request and req/s, the median change,
    the `extra` columns, errors, the verdict and each round's change."""
    base, cost = comparison.sides
    columns: list[Column] = [
        (f"{base} µs/req", base, "cpu_us_per_request", ",.1f"),
        (f"{cost} µs/req", cost, "cpu_us_per_request", ",.1f"),
        (f"{base} req/s", base, "rps", ",.0f"),
        (f"{cost} req/s", cost, "rps", ",.0f"),
        *extra,
    ]
    heads = [c[0] for c in columns]
    verdict = f"CPU ≤ +{comparison.tolerance_pct:g} %"
    rows = [["scenario", *heads[:2], "change", *heads[2:], "errors", verdict, "per round"]]
    for scenario, entry in summary.items():
        cells = [format(entry[side].get(key, 0.0), fmt) for _head, side, key, fmt in columns]
        rounds = ", ".join(f"{p:+.1f}" for p in entry["paired_change_pct"])
        rows.append(
            [
                scenario,
                *cells[:2],
                f"{entry['cpu_change_pct']:+.1f}%",
                *cells[2:],
                str(entry["errors"]),
                "ok" if entry["within_tolerance"] else "COSTLIER",
                f"[{rounds}]",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        " ".join(
            cell.ljust(w) if i in (0, len(row) - 2) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def print_run(run: Run) -> None:
    extra = "  ".join(
        f"{key.removesuffix('_per_request')}/request {value:g}" for key, value in run.extra.items()
    )
    print(
        f"round {run.round} {run.side:<6} {run.scenario:<19} {run.rps:9.1f} req/s "
        f"{run.cpu_us_per_request:9.1f} µs CPU/request  p99 {run.p99_ms:7.2f} ms  {extra}  "
        f"errors {run.errors}",
        flush=True,
    )


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
    columns: Sequence[Column] = (),
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
                progress=print_run,
                before_round=before_round,
            )
    except BaseException:
        print(f"{prog}: failed; databases and server logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    summary = summarise(comparison, runs, args.scenarios)
    name = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nmedians over {args.rounds} rounds, {name}, {args.connections} connections:")
    print(table(comparison, summary, columns))
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
