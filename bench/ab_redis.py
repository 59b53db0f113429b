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
import sys
from collections.abc import Sequence
from typing import Any

from bench.ab_command import arguments, only_harness_settings, parse, run_rounds, wrk_missing
from bench.ab_envs import Run
from bench.run import BYTECODE_CACHE
from bench.throttle_cost import CPU_TOLERANCE_PCT, TRAFFIC, comparison
from tests.support.redis import start_redis

PROG = "python -m bench.ab_redis"


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


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    known = list(TRAFFIC)
    parser = arguments(PROG, description, known, rounds=6, seconds=10, default="login")
    return parse(parser, known, argv)


def _print(run: Run) -> None:
    print(
        f"round {run.round} {run.side:<6} {run.scenario:<19} {run.rps:9.1f} req/s "
        f"{run.cpu_us_per_request:9.1f} µs CPU/request  redis-server "
        f"{run.extra['redis_cpu_us_per_request']:7.1f} µs, "
        f"{run.extra['redis_commands_per_request']:g} commands "
        f"({run.extra['redis_scripts_per_request']:g} scripts)/request  errors {run.errors}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if wrk_missing(PROG):
        return 2
    only_harness_settings(BYTECODE_CACHE)
    redis = start_redis()
    try:
        measured = comparison(redis)
        return run_rounds(
            PROG, measured, args, table=table, progress=_print, before_round=redis.flush
        )
    finally:
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
