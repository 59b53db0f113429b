"""Metrics and JSON logs against neither, interleaved on one machine: /users/me
Bearer's server CPU per request and req/s of `userservice serve --no-tls --workers
2` with a metrics port and `USERSERVICE_LOG_FORMAT=json`, and with the defaults
(both at INFO), per round and as medians, with the log lines and metric counts per
request that show each side did what it says:

    .venv/bin/python -m bench.ab_observability                 # SQLite, 6 rounds
    .venv/bin/python -m bench.ab_observability --postgres --json ab-obs.json

Each round seeds a fresh database (N users, an admin, a confidential client) and
starts both servers on it (127.0.0.1, no TLS). Then each side in turn (the order
alternates by round), a discarded warm-up, then wrk for --seconds. The verdict is
the median over rounds of the per-round change (on / off - 1), against +5 %."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench.ab_command import arguments, only_harness_settings, parse, run_rounds, wrk_missing
from bench.ab_envs import Run
from bench.observability_cost import COMPARISON, CPU_TOLERANCE_PCT, TRAFFIC
from bench.run import BYTECODE_CACHE

PROG = "python -m bench.ab_observability"


def table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'scenario':<11} {'off µs/req':>10} {'on µs/req':>9} {'change':>8} "
        f"{'off req/s':>9} {'on req/s':>8} {'off p99':>7} {'on p99':>7} "
        f"{'lines/req off':>13} {'on (JSON)':>11} {'counted/req':>11} {'errors':>6}  "
        f"CPU ≤ +{CPU_TOLERANCE_PCT:g} %  per round"
    ]
    for scenario, e in summary.items():
        off, on = e["off"], e["on"]
        verdict = "ok" if e["within_tolerance"] else "COSTLIER"
        rounds = ", ".join(f"{p:+.1f}" for p in e["paired_change_pct"])
        lines.append(
            f"{scenario:<11} {off['cpu_us_per_request']:>10,.1f} "
            f"{on['cpu_us_per_request']:>9,.1f} {e['cpu_change_pct']:>+7.1f}% "
            f"{off['rps']:>9,.0f} {on['rps']:>8,.0f} {off['p99_ms']:>7.2f} {on['p99_ms']:>7.2f} "
            f"{off['log_lines_per_request']:>13g} "
            f"{on['log_lines_per_request']:>4g} ({on['json_lines_per_request']:g}) "
            f"{on['metrics_count_per_request']:>11g} {e['errors']:>6}  {verdict:<13} [{rounds}]"
        )
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    known = list(TRAFFIC)
    parser = arguments(PROG, description, known, rounds=6, seconds=10, default="me-bearer")
    return parse(parser, known, argv)


def _print(run: Run) -> None:
    extra = run.extra
    print(
        f"round {run.round} {run.side:<3} {run.scenario:<10} {run.rps:9.1f} req/s "
        f"{run.cpu_us_per_request:8.1f} µs CPU/request  p99 {run.p99_ms:6.2f} ms  "
        f"{extra['log_lines_per_request']:g} log lines ({extra['json_lines_per_request']:g} "
        f"JSON), {extra['metrics_count_per_request']:g} counted/request  errors {run.errors}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if wrk_missing(PROG):
        return 2
    only_harness_settings(BYTECODE_CACHE)
    return run_rounds(PROG, COMPARISON, args, table=table, progress=_print)


if __name__ == "__main__":
    sys.exit(main())
