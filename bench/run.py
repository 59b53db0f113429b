"""`python -m bench.run [--smoke] [--out DIR]`: every scenario, side by side, on
127.0.0.1 only and bounded in time; writes results.json, results.md and
results.png to DIR (default bench/results/) and the servers' logs to DIR/logs/."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

from bench import chart, goals, observability_cost, scenarios, throttle_cost
from bench.ab_envs import compare
from bench.cluster import run_cluster
from bench.pg import Cluster
from bench.plan import FULL, SMOKE, Plan
from bench.report import Report, machine_facts
from bench.stages import SERVICE_SETTINGS, run_config
from bench.wrk import WrkFailed, wrk_path
from tests.support.redis import start_redis

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
BYTECODE_CACHE = DEFAULT_OUT / ".pycache"
# Stages by name (--only): the configurations are the service's and the peer's runs.
STAGES = ("ceiling", "argon2", "configs", "throttle", "observability", "fleet")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny data: a check only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    parser.add_argument(
        "--only",
        default=",".join(STAGES),
        help=f"comma-separated stages to run, of: {', '.join(STAGES)} (default: all)",
    )
    return parser


def _phase(report: Report, name: str, action: Callable[[], object]) -> None:
    started = time.monotonic()
    print(f"bench {time.strftime('%H:%M:%S')} ({report.mode}): {name}", flush=True)
    action()
    report.phases[name] = round(time.monotonic() - started, 1)


def _run(plan: Plan, report: Report, work: Path, logs: Path, only: Sequence[str]) -> None:
    if "ceiling" in only:
        _phase(report, "ceiling", lambda: scenarios.ceiling(report, plan, logs))
    if "argon2" in only:
        _phase(report, "argon2id limit", lambda: scenarios.hashing_limit(report, plan))
    cluster: Cluster | None = None
    try:
        for config in plan.configs if "configs" in only else ():
            if config.backend == "postgresql" and cluster is None:
                print("bench: starting the throwaway PostgreSQL 15 cluster", flush=True)
                cluster = Cluster()
            name = f"{config.backend} {config.users:,} users"
            _phase(report, name, partial(run_config, report, plan, config, work, logs, cluster))
        if plan.throttle_rounds and "throttle" in only:
            cluster = cluster or Cluster()
            throttle = partial(_throttle, plan, report, cluster, work, logs)
            _phase(report, "Redis throttling", throttle)
    finally:
        if cluster is not None:
            cluster.stop()
    if plan.observability_rounds and "observability" in only:
        observability = partial(_observability, plan, report, work, logs)
        _phase(report, "metrics and JSON logs", observability)
    if plan.cluster_users and "fleet" in only:
        users = plan.cluster_users
        run = partial(run_cluster, report, plan, work, logs, users, _progress)
        _phase(report, f"fleet {users:,} users", run)


def _throttle(plan: Plan, report: Report, cluster: Cluster, work: Path, logs: Path) -> None:
    """The password grant with the throttle counters in memory and in Redis, in
    turns, on PostgreSQL at the small configuration's user count."""
    users = min(c.users for c in plan.configs if c.backend == "postgresql")
    redis = start_redis()
    try:
        compare(
            throttle_cost.comparison(redis),
            plan,
            lambda: cluster.create_database("throttle_" + uuid.uuid4().hex[:8]),
            work,
            logs,
            backend="postgresql",
            users=users,
            rounds=plan.throttle_rounds,
            scenarios=["login"],
            report=report,
            before_round=redis.flush,
        )
    finally:
        redis.close()


def _observability(plan: Plan, report: Report, work: Path, logs: Path) -> None:
    """/users/me Bearer with metrics and JSON logs on and off, in turns, on SQLite at
    the small configuration's user count, served as the configurations are."""
    users = min(c.users for c in plan.configs if c.backend == "sqlite")
    compare(
        observability_cost.COMPARISON,
        plan,
        lambda: f"sqlite:///{work / ('observability_' + uuid.uuid4().hex[:8])}.db",
        work,
        logs,
        backend="sqlite",
        users=users,
        rounds=plan.observability_rounds,
        scenarios=list(observability_cost.TRAFFIC),
        report=report,
    )


def _progress(text: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {text}", flush=True)


def _stop_on_sigterm() -> None:
    """SIGTERM (`timeout`, a test's deadline) unwinds like Ctrl-C: every server,
    the fleet included, is stopped by PID in the `finally` blocks instead of being
    left running."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def main(argv: Sequence[str] | None = None) -> int:
    _stop_on_sigterm()
    parser = _parser()
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if not only or any(name not in STAGES for name in only):
        parser.error(f"--only: one or more of {', '.join(STAGES)}")
    try:
        wrk_path()
    except WrkFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    # Only the harness's own settings: a developer's USERSERVICE_DATABASE_URL must
    # never point the seeding at a real database.
    for key in [k for k in os.environ if k.startswith("USERSERVICE_")]:
        del os.environ[key]

    _bytecode_cache()
    plan = SMOKE if args.smoke else FULL
    out: Path = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    report = Report(plan.mode, command.strip(), machine_facts(), dict(SERVICE_SETTINGS))
    work = Path(tempfile.mkdtemp(prefix="userservice-bench-"))
    started = time.monotonic()
    failed: BaseException | None = None
    try:
        _run(plan, report, work, logs, only)
    except BaseException as exc:  # still write what was measured, then re-raise
        failed = exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        report.seconds = round(time.monotonic() - started, 1)
        # Other work on the machine skews every row: both ends of the run are recorded.
        report.machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        report.goals = goals.compute(report)
        json_path, md_path = report.write(out)
        png_path = chart.draw(asdict(report), out / "results.png") if report.rows else None
        state = "FAILED" if failed else "done"
        print(f"bench: {state} in {report.seconds:.0f} s; wrote {json_path}, {md_path}, {png_path}")
        _print_goals(report)
    return 0


def _bytecode_cache() -> None:
    """Every process the run starts caches its bytecode in bench/results/.pycache, as
    an installed package would have it compiled (pip does; `uv sync` with
    --compile-bytecode). This machine sets PYTHONDONTWRITEBYTECODE=1 and .venv holds
    no .pyc, which would make every start compile all its imports again (~2 s per
    process here). The cold-start rows also show one start without any cache."""
    BYTECODE_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(BYTECODE_CACHE)


def _print_goals(report: Report) -> None:
    for goal in report.goals:
        result = "n/a" if goal.met is None else ("met" if goal.met else "MISSED")
        print(f"  goal {result:<6} {goal.goal}: {goal.measured} (target {goal.target})")


if __name__ == "__main__":
    sys.exit(main())
