"""What counting throttles in Redis costs a request: one tree, one database, two
servers of it, one with `USERSERVICE_REDIS_URL` (counters in a throwaway Redis) and
one without (counters in process memory), measured in turns, round after round.

The figure that counts is the server's CPU per request (utime + stime of the whole
process from /proc, the argon2id hashing threads included; bench/ab_envs.py
measures), which a busy machine disturbs far less than req/s; the Redis server's own
CPU and the commands it served per request are reported beside it, apart from the
service's. Used by `python -m bench.ab_redis` and by `make bench`'s "Redis
throttling" phase."""

from __future__ import annotations

import socket
from collections.abc import Callable

from bench import seed
from bench.ab_envs import Comparison, Probe, Run
from bench.http import basic
from bench.scenarios_service import FORM, Service
from bench.servers import HOST, Server, cpu_seconds
from bench.wrk import Traffic
from tests.support.redis import RedisServer

SIDES = ("memory", "redis")
# The bar: counting in Redis may cost the password grant at most this much more
# server CPU per request than counting in memory.
CPU_TOLERANCE_PCT = 5.0
SYSTEM = "throttle"  # the rows' system: apart from the service's own rows
REDIS_FIGURES = (
    "redis_cpu_us_per_request",
    "redis_commands_per_request",
    "redis_scripts_per_request",
)


def _client_credentials(svc: Service) -> Traffic:
    headers = {**FORM, "Authorization": basic(svc.client_id, svc.client_secret)}
    return Traffic(
        "/oauth/token", "POST", headers, "grant_type=client_credentials", expect="access_token"
    )


def _basic(svc: Service) -> Traffic:
    # Basic is throttled like a login; behind a proxy as `make bench`'s me-basic.
    headers = {
        "Authorization": basic(seed.user_email(0), seed.PASSWORD),
        "X-Forwarded-Proto": "https",
    }
    return Traffic("/users/me", headers=headers)


# The password grant (a random one of the seeded users per request, as `make
# bench`'s login row: no account nears its limit) first; the others for context.
TRAFFIC: dict[str, Callable[[Service], Traffic]] = {
    "login": Service.login_traffic,
    "me-basic": _basic,
    "me-bearer": Service.bearer,
    "client-credentials": _client_credentials,
}


def redis_counts(redis: RedisServer) -> tuple[int, int]:
    """(commands, script calls) the Redis server has processed so far. Commands
    include those a script runs (each redis.call) and this INFO itself; script calls
    (EVAL, EVALSHA) are the round trips of the throttle's atomic steps."""
    with socket.create_connection((HOST, redis.port), timeout=2) as conn:
        conn.sendall(b"INFO all\r\n")
        header = b""
        while not header.endswith(b"\r\n"):
            header += conn.recv(1)
        size = int(header[1:-2])  # a bulk string: $<length>\r\n<data>\r\n
        data = b""
        while len(data) < size:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    commands = scripts = 0
    for line in data.decode().splitlines():
        if line.startswith("total_commands_processed:"):
            commands = int(line.split(":", 1)[1])
        elif line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
            scripts += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return commands, scripts


def _redis_probe(redis: RedisServer) -> Probe:
    """What the Redis server did during one run: its CPU, the commands it ran (those
    inside scripts included) and the script calls (the throttle's round trips)."""

    def start(_server: Server) -> Callable[[int], dict[str, float]]:
        assert redis.process is not None
        pid = redis.process.pid
        cpu, (commands, scripts) = cpu_seconds(pid), redis_counts(redis)

        def finish(requests: int) -> dict[str, float]:
            after, scripts_after = redis_counts(redis)
            return {
                "redis_cpu_us_per_request": round((cpu_seconds(pid) - cpu) / requests * 1e6, 1),
                # Minus one: the INFO that read the count before the run.
                "redis_commands_per_request": round((after - commands - 1) / requests, 2),
                "redis_scripts_per_request": round((scripts_after - scripts) / requests, 2),
            }

        return finish

    return start


def _note(run: Run) -> str:
    return (
        f"redis-server: {run.extra['redis_cpu_us_per_request']:,.1f} µs CPU and "
        f"{run.extra['redis_commands_per_request']:g} commands "
        f"({run.extra['redis_scripts_per_request']:g} script calls) per request"
    )


def comparison(redis: RedisServer) -> Comparison:
    """Counters in process memory against counters in `redis`, on one uvicorn
    process per side (no --workers: the process's CPU is the server's, argon2id
    threads included)."""
    return Comparison(
        name=SYSTEM,
        sides=SIDES,
        env=lambda side: {"USERSERVICE_REDIS_URL": redis.url} if side == "redis" else {},
        traffic=TRAFFIC,
        tolerance_pct=CPU_TOLERANCE_PCT,
        probe=_redis_probe(redis),
        extra_keys=REDIS_FIGURES,
        note=_note,
    )
