"""The scenarios of this first cut: the FastAPI ceiling, the service on SQLite
(`GET /users/me` with Bearer and with Basic), and the argon2id hashing limit."""

from __future__ import annotations

import base64
import json
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import argon2_limit, seed
from bench.report import Report, Row
from bench.servers import Server, free_port
from bench.wrk import run_wrk
from userservice.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


@dataclass(frozen=True)
class Plan:
    mode: str
    connections: tuple[int, ...]
    seconds: int
    warmup_seconds: int
    users: int
    hash_seconds: float


FULL = Plan("full", (16, 64), 10, 3, 1_000, 10.0)
SMOKE = Plan("smoke", (4,), 1, 1, 50, 1.0)


def _drive(
    report: Report,
    plan: Plan,
    server: Server,
    scenario: str,
    path: str,
    *,
    authorization: str = "",
    forwarded_proto: str = "",
    notes: str = "",
) -> None:
    url = server.base_url + path
    headers = {"authorization": authorization, "forwarded_proto": forwarded_proto}
    run_wrk(url, connections=max(plan.connections), seconds=plan.warmup_seconds, **headers)
    for connections in plan.connections:
        cpu_before = server.cpu_seconds()
        load = run_wrk(url, connections=connections, seconds=plan.seconds, **headers)
        cpu = server.cpu_seconds() - cpu_before
        report.add(
            Row(
                scenario=scenario,
                connections=connections,
                seconds=round(load.seconds, 2),
                requests=load.requests,
                rps=round(load.rps, 1),
                p50_ms=round(load.p50_ms, 3),
                p99_ms=round(load.p99_ms, 3),
                errors=load.errors,
                peak_rss_mib_per_worker=server.peak_rss_per_worker(),
                cpu_ms_per_request=round(cpu / load.requests * 1000, 3) if load.requests else None,
                notes=notes,
            )
        )


def ceiling(report: Report, plan: Plan, logs: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(WORKERS)]
    argv += ["--no-access-log", "--no-server-header", "--log-level", "warning"]
    server = Server("ceiling", argv, port, "/ping", cwd=ROOT, log=logs / "ceiling.log")
    server.start(expected_workers=WORKERS)
    try:
        _drive(report, plan, server, "ceiling: FastAPI async JSON", "/ping")
    finally:
        server.stop()


def _password_grant(base_url: str, email: str, password: str) -> str:
    form = {
        "grant_type": "password",
        "client_id": "userservice-frontend",
        "username": email,
        "password": password,
    }
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        base_url + "/oauth/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        return str(json.loads(reply.read())["access_token"])


def service_sqlite(report: Report, plan: Plan, work: Path, logs: Path) -> None:
    data_dir = work / "sqlite"
    env = {
        "USERSERVICE_DATA_DIR": str(data_dir),
        "USERSERVICE_ENV_FILE": str(work / "no.env"),
        "USERSERVICE_LOG_LEVEL": "warning",
        # As behind a TLS-terminating proxy on this host: Basic needs https (X-Forwarded-Proto).
        "USERSERVICE_TRUSTED_PROXIES": '["127.0.0.1"]',
    }
    data_dir.mkdir(parents=True)
    seed.migrate(env)
    settings = Settings(data_dir=data_dir)
    seed.seed_users(settings.resolved_database_url(), plan.users, seed.precomputed_hash(settings))

    port = free_port()
    argv = [sys.executable, "-m", "userservice.cli", "serve", "--no-tls", "--no-migrate"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    server = Server("userservice", argv, port, "/readyz", env=env, cwd=work, log=logs / "svc.log")
    server.start(expected_workers=WORKERS)
    try:
        email = seed.user_email(0)
        token = _password_grant(server.base_url, email, seed.PASSWORD)
        where = f"SQLite, {plan.users} users"
        _drive(
            report,
            plan,
            server,
            "service: /users/me Bearer",
            "/users/me",
            authorization=f"Bearer {token}",
            notes=f"{where}; ES256 access token from one password grant",
        )
        basic = base64.b64encode(f"{email}:{seed.PASSWORD}".encode()).decode()
        _drive(
            report,
            plan,
            server,
            "service: /users/me Basic",
            "/users/me",
            authorization=f"Basic {basic}",
            forwarded_proto="https",
            notes=f"{where}; one argon2id verify per request, by design",
        )
    finally:
        server.stop()


def hashing_limit(report: Report, plan: Plan) -> None:
    result = argon2_limit.measure(plan.hash_seconds)
    s = Settings()
    params = f"m={s.argon2_memory_kib} KiB, t={s.argon2_time_cost}, p={s.argon2_parallelism}"
    report.add(
        Row(
            scenario="argon2id verify limit",
            connections=None,
            seconds=round(result.seconds, 2),
            requests=result.verifies,
            rps=round(result.rps, 1),
            p50_ms=round(result.p50_ms, 3),
            p99_ms=round(result.p99_ms, 3),
            errors=result.errors,
            peak_rss_mib_per_worker=result.peak_rss_mib,
            cpu_ms_per_request=round(result.cpu_ms_per_verify, 3),
            notes=f"{params}; {result.processes} processes (one per core)",
        )
    )
