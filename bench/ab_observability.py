"""Metrics and JSON logs against neither, interleaved on one machine: /users/me
Bearer's server CPU per request and req/s of `userservice serve --no-tls --workers
2` with a metrics port and `USERSERVICE_LOG_FORMAT=json`, and with the defaults
(both at INFO), per round and as medians, with the log lines and metric counts per
request that show each side did what it says:

    .venv/bin/python -m bench.ab_observability                 # SQLite, 6 rounds
    .venv/bin/python -m bench.ab_observability --postgres --json ab-obs.json
    .venv/bin/python -m bench.ab_observability --on metrics     # or json: one alone

Each round seeds a fresh database (N users, an admin, a confidential client) and
starts both servers on it (127.0.0.1, no TLS). Then each side in turn (the order
alternates by round), a discarded warm-up, then wrk for --seconds. The verdict is
the median over rounds of the per-round change (on / off - 1), against +5 %."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.ab_command import only_harness_settings, options, run_rounds, wrk_missing
from bench.observability_cost import PARTS, TRAFFIC, comparison
from bench.run import BYTECODE_CACHE

PROG = "python -m bench.ab_observability"
# Beside the service's figures: what shows each side did what it is named after.
COLUMNS = (
    ("off p99 ms", "off", "p99_ms", ".2f"),
    ("on p99 ms", "on", "p99_ms", ".2f"),
    ("off lines/req", "off", "log_lines_per_request", "g"),
    ("on lines/req", "on", "log_lines_per_request", "g"),
    ("on JSON/req", "on", "json_lines_per_request", "g"),
    ("on counted/req", "on", "metrics_count_per_request", "g"),
)


def main(argv: Sequence[str] | None = None) -> int:
    known = list(TRAFFIC)
    extra = ("--on", f"what the on side turns on, of {', '.join(PARTS)} (default: both)")
    args = options(
        PROG, __doc__, known, argv, rounds=6, seconds=10, default="me-bearer", extra=extra
    )
    parts = [p.strip() for p in (args.on or ",".join(PARTS)).split(",") if p.strip()]
    if not parts or any(p not in PARTS for p in parts):
        print(f"{PROG}: --on takes {', '.join(PARTS)}", file=sys.stderr)
        return 2
    if wrk_missing(PROG):
        return 2
    only_harness_settings(BYTECODE_CACHE)
    return run_rounds(PROG, comparison(parts), args, columns=COLUMNS)


if __name__ == "__main__":
    sys.exit(main())
