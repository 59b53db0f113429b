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

import sys
from collections.abc import Sequence

from bench.ab_command import only_harness_settings, options, run_rounds, wrk_missing
from bench.run import BYTECODE_CACHE
from bench.throttle_cost import TRAFFIC, comparison
from tests.support.redis import start_redis

PROG = "python -m bench.ab_redis"
# Beside the service's figures: what the Redis server did, per request.
COLUMNS = (
    ("redis-server µs/req", "redis", "redis_cpu_us_per_request", ",.1f"),
    ("cmds/req", "redis", "redis_commands_per_request", "g"),
    ("scripts/req", "redis", "redis_scripts_per_request", "g"),
)


def main(argv: Sequence[str] | None = None) -> int:
    args = options(PROG, __doc__, list(TRAFFIC), argv, rounds=6, seconds=10, default="login")
    if wrk_missing(PROG):
        return 2
    only_harness_settings(BYTECODE_CACHE)
    redis = start_redis()
    try:
        measured = comparison(redis)
        return run_rounds(PROG, measured, args, columns=COLUMNS, before_round=redis.flush)
    finally:
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
