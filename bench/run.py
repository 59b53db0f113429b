"""`python -m bench.run [--smoke] [--out DIR]`: every scenario, side by side, on
127.0.0.1 only and bounded in time; writes results.json and results.md to DIR."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import scenarios
from bench.report import Report, machine_facts
from bench.wrk import WrkFailed, wrk_path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny data: a check only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        wrk_path()
    except WrkFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    # Only the harness's own settings: a developer's USERSERVICE_DATABASE_URL must
    # never point the seeding at a real database.
    for key in [k for k in os.environ if k.startswith("USERSERVICE_")]:
        del os.environ[key]

    plan = scenarios.SMOKE if args.smoke else scenarios.FULL
    out: Path = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    report = Report(mode=plan.mode, machine=machine_facts())
    work = Path(tempfile.mkdtemp(prefix="userservice-bench-"))
    started = time.monotonic()
    try:
        print(f"bench ({plan.mode}): ceiling", flush=True)
        scenarios.ceiling(report, plan, logs)
        print(f"bench ({plan.mode}): service on SQLite, {plan.users} users", flush=True)
        scenarios.service_sqlite(report, plan, work, logs)
        print(f"bench ({plan.mode}): argon2id hashing limit", flush=True)
        scenarios.hashing_limit(report, plan)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        json_path, md_path = report.write(out)
    print(f"bench: {time.monotonic() - started:.0f} s; wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
