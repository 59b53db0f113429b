"""What counting throttles in Redis costs a request: one tree, one database, two
servers of it, one with `USERSERVICE_REDIS_URL` (counters in a throwaway Redis) and
one without (counters in process memory), measured in turns, round after round.

The figure that counts is the server's CPU per request (utime + stime of the whole
process from /proc, the argon2id hashing threads included), which a busy machine
disturbs far less than req/s; the Redis server's own CPU and the commands it served
per request are reported beside it, apart from the service's. Used by
`python -m bench.ab_redis` and by `make bench`'s "Redis throttling" phase."""

from __future__ import annotations

import socket
import statistics
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import seed
from bench.http import basic
from bench.plan import Plan
from bench.report import Report, Row
from bench.scenarios import Target, one_run
from bench.scenarios_service import FORM, Service
from bench.servers import HOST, Server, cpu_seconds, free_port, peak_rss_mib, reset_peak
from bench.stages import service_env
from bench.wrk import Traffic, run_wrk
from tests.support.redis import RedisServer
from userservice.settings import Settings

SIDES = ("memory", "redis")
# The bar: counting in Redis may cost the password grant at most this much more
# server CPU per request than counting in memory.
CPU_TOLERANCE_PCT = 5.0
APP = "userservice.app:create_app_from_env"
SYSTEM = "throttle"  # the rows' system: apart from the service's own rows
ROOT = Path(__file__).resolve().parent.parent


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


@dataclass(frozen=True)
class Run:
    round: int
    side: str  # memory | redis
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float  # the service process, every thread
    redis_cpu_us_per_request: float  # the redis-server process
    redis_commands_per_request: float  # redis.call()s inside scripts included
    redis_scripts_per_request: float  # EVAL/EVALSHA: round trips of atomic steps
    errors: int


@dataclass(frozen=True)
class RedisUse:
    cpu_seconds: float
    commands: int
    scripts: int


def order(round_index: int, scenario_index: int) -> tuple[str, ...]:
    """memory, redis then redis, memory: drift and warm caches favour neither."""
    return SIDES if (round_index + scenario_index) % 2 == 0 else SIDES[::-1]


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


class OneProcess(Server):
    """A server without --workers: the process itself serves, so its RSS is the
    worker's."""

    def _pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def reset_peak_rss(self) -> None:
        self.peak_resettable = all([reset_peak(pid) for pid in self._pids()])

    def peak_rss_per_worker(self) -> list[float]:
        return [round(peak_rss_mib(pid), 1) for pid in self._pids()]


def _server(env: dict[str, str], log: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", APP, "--host", HOST]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    # One process, no --workers: its PID's CPU (all threads) is the server's.
    server = OneProcess("userservice", argv, port, "/readyz", env=env, cwd=ROOT, log=log)
    server.start(expected_workers=0)
    return server


@contextmanager
def _pair(
    plan: Plan, url: str, redis: RedisServer, work: Path, logs: Path, backend: str, users: int
) -> Iterator[dict[str, Service]]:
    """Both sides serving one freshly seeded database; stopped by PID on exit."""
    tag = uuid.uuid4().hex[:8]
    data_dir = work / f"throttle-{tag}"
    data_dir.mkdir(parents=True)
    env = service_env(url, data_dir, work)
    seed.migrate(env)
    seed.seed_users(url, users, seed.precomputed_hash(Settings(_env_file=None)))
    seed.create_admin(env)
    client_id, client_secret = seed.create_confidential_client(env)
    envs = {"memory": env, "redis": {**env, "USERSERVICE_REDIS_URL": redis.url}}
    with ExitStack() as stack:
        services: dict[str, Service] = {}
        for side in SIDES:
            server = _server(envs[side], logs / f"throttle-{side}-{backend}.log")
            stack.callback(server.stop)
            target = Target(server, SYSTEM, backend, users)
            report = Report("throttle", "")
            services[side] = Service(report, plan, target, client_id, client_secret, logs)
        yield services


def measure_one(
    svc: Service, redis: RedisServer, scenario: str, plan: Plan, row_scenario: str
) -> tuple[Row, RedisUse]:
    """A discarded warm-up, then one wrk run: the row, and what the Redis server
    did during that run."""
    traffic = TRAFFIC[scenario](svc)
    connections = plan.connections[0]
    server = svc.target.server
    if plan.warmup_seconds:
        server.wait_idle()
        run_wrk(server.base_url, traffic, connections=connections, seconds=plan.warmup_seconds)
    server.wait_idle()
    assert redis.process is not None
    redis_cpu, (commands, scripts) = cpu_seconds(redis.process.pid), redis_counts(redis)
    row = one_run(svc.target, row_scenario, traffic, connections, plan.seconds)
    after, scripts_after = redis_counts(redis)
    # Minus one: the INFO that read the count before the run.
    spent = RedisUse(
        cpu_seconds(redis.process.pid) - redis_cpu, after - commands - 1, scripts_after - scripts
    )
    return row, spent


def summarise(runs: Sequence[Run], scenarios: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per scenario: medians per side, and the change of redis against memory in
    server CPU per request, per round (the two runs of a round share the machine's
    moment) with its median, lowest and highest."""
    summary: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        mine = [r for r in runs if r.scenario == scenario]
        entry: dict[str, Any] = {"errors": sum(r.errors for r in mine)}
        for side in SIDES:
            those = [r for r in mine if r.side == side]
            entry[side] = {
                key: round(statistics.median(getattr(r, key) for r in those), 1)
                for key in (
                    "cpu_us_per_request",
                    "rps",
                    "p99_ms",
                    "redis_cpu_us_per_request",
                    "redis_commands_per_request",
                    "redis_scripts_per_request",
                )
            }
        cpu = {(r.round, r.side): r.cpu_us_per_request for r in mine}
        paired = [
            (cpu[n, "redis"] / cpu[n, "memory"] - 1) * 100
            for n in sorted({r.round for r in mine})
            if cpu.get((n, "memory")) and (n, "redis") in cpu
        ]
        median_change = statistics.median(paired) if paired else 0.0
        entry["paired_change_pct"] = [round(p, 1) for p in paired]
        entry["cpu_change_pct"] = round(median_change, 1)
        entry["within_tolerance"] = median_change <= CPU_TOLERANCE_PCT
        summary[scenario] = entry
    return summary


def compare(
    plan: Plan,
    redis: RedisServer,
    fresh: Callable[[], str],
    work: Path,
    logs: Path,
    *,
    backend: str,
    users: int,
    rounds: int,
    scenarios: Sequence[str],
    report: Report | None = None,
    progress: Callable[[Run], None] | None = None,
) -> list[Run]:
    """`rounds` rounds, each on a fresh database (`fresh()` makes one) seeded with
    `users` users and served by both sides; each scenario on each side in turn.
    Rows go to `report` as `<scenario>-throttle-<side>`, when given."""
    runs: list[Run] = []
    for round_index in range(rounds):
        redis.flush()
        with _pair(plan, fresh(), redis, work, logs, backend, users) as services:
            for index, scenario in enumerate(scenarios):
                for side in order(round_index, index):
                    name = f"{scenario}-throttle-{side}"
                    row, used = measure_one(services[side], redis, scenario, plan, name)
                    requests = max(1, row.requests)
                    run = Run(
                        round=round_index + 1,
                        side=side,
                        scenario=scenario,
                        rps=row.rps,
                        p50_ms=row.p50_ms,
                        p99_ms=row.p99_ms,
                        cpu_us_per_request=(row.cpu_ms_per_request or 0.0) * 1000,
                        redis_cpu_us_per_request=round(used.cpu_seconds / requests * 1e6, 1),
                        redis_commands_per_request=round(used.commands / requests, 2),
                        redis_scripts_per_request=round(used.scripts / requests, 2),
                        errors=row.errors,
                    )
                    runs.append(run)
                    if report is not None:
                        row.notes = (
                            f"round {run.round} of {rounds}, interleaved; redis-server: "
                            f"{run.redis_cpu_us_per_request:,.1f} µs CPU and "
                            f"{run.redis_commands_per_request:g} commands "
                            f"({run.redis_scripts_per_request:g} script calls) per request"
                        )
                        report.add(row)
                    if progress is not None:
                        progress(run)
    return runs
