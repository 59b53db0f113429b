"""One configuration of a run: seed a database, start the service on it (timing
each cold start), run its scenarios, then the same on TLS, then the peer."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import scenarios, seed
from bench.pg import Cluster
from bench.plan import WORKERS, Config, Plan, users_label
from bench.report import Report, Startup
from bench.scenarios import Target
from bench.scenarios_service import Service, service_server
from userservice.settings import Settings

# What an operator behind a TLS-terminating proxy on this host would set, plus the
# bench's own: login throttling counts only failures, but a run must never be
# throttled by its own traffic from one IP; no access log per request (as the
# ceiling's --no-access-log).
SERVICE_SETTINGS = {
    "USERSERVICE_LOG_LEVEL": "warning",
    "USERSERVICE_TRUSTED_PROXIES": '["127.0.0.1"]',
    "USERSERVICE_LOGIN_LIMIT_PER_IP": "1000000/minute",
    "USERSERVICE_LOGIN_LIMIT_PER_ACCOUNT": "1000000/minute",
    # The register scenario signs up from one address: sign-ups are limited per
    # client like the other requests that send mail.
    "USERSERVICE_MAIL_LIMIT_PER_IP": "1000000/minute",
}


def service_env(url: str, data_dir: Path, work: Path) -> dict[str, str]:
    return {
        **SERVICE_SETTINGS,
        "USERSERVICE_DATABASE_URL": url,
        "USERSERVICE_DATA_DIR": str(data_dir),
        # Never a developer's .env; a named file must exist, so the empty one.
        "USERSERVICE_ENV_FILE": os.devnull,
    }


def _progress(text: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {text}", flush=True)


def _database(config: Config, work: Path, cluster: Cluster | None, owner: str) -> tuple[str, str]:
    """(sync URL for the service, async URL for the peer) of a fresh database."""
    name = f"{owner}_{users_label(config.users).lower()}"
    if config.backend == "sqlite":
        path = (work / f"{name}.db").resolve()
        return f"sqlite:///{path}", f"sqlite+aiosqlite:///{path}"
    assert cluster is not None
    return cluster.create_database(name), cluster.asyncpg_url(name)


def _prepare(config: Config, env: dict[str, str], url: str) -> tuple[str, str]:
    started = time.monotonic()
    seed.migrate(env)
    settings = Settings(_env_file=None, database_url=url)
    seed.seed_users(url, config.users, seed.precomputed_hash(settings))
    seeded = time.monotonic() - started
    seed.create_admin(env)
    client = seed.create_confidential_client(env)
    _progress(f"seeded {config.users:,} users on {config.backend} in {seeded:.1f} s")
    return client


def _start(
    report: Report,
    plan: Plan,
    config: Config,
    env: dict[str, str],
    work: Path,
    logs: Path,
    *,
    tls: bool,
    cold_starts: int,
) -> Target:
    tag = f"{config.backend}-{config.users}{'-tls' if tls else ''}"
    log = logs / f"service-{tag}.log"
    tls_dir = Path(env["USERSERVICE_DATA_DIR"]) / "tls" if tls else None
    ready: list[float] = []
    uncached: float | None = None
    if cold_starts:
        # An empty cache that is never written: every import compiles from source.
        no_cache = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(work / "no-pyc")}
        bare = service_server({**env, **no_cache}, work, log, tls_dir)
        bare.start(expected_workers=WORKERS)
        uncached = bare.ready_seconds
        bare.stop()
    # Extra start/stop cycles: the cold-start figure is their median with the main
    # start's; the idle RSS is the main start's.
    for _ in range(cold_starts):
        extra = service_server(env, work, log, tls_dir)
        extra.start(expected_workers=WORKERS)
        ready.append(extra.ready_seconds)
        extra.stop()
    server = service_server(env, work, log, tls_dir)
    server.start(expected_workers=WORKERS)
    target = Target(server, "service", config.backend, config.users, tls)
    report.add_startup(
        Startup(
            system="service",
            backend=config.backend,
            users=config.users,
            tls=tls,
            label=target.name,
            ready_seconds=[round(s, 3) for s in [*ready, server.ready_seconds]],
            idle_rss_mib_per_worker=server.idle_rss_mib,
            uncached_ready_seconds=round(uncached, 3) if uncached else None,
        )
    )
    return target


def run_config(
    report: Report, plan: Plan, config: Config, work: Path, logs: Path, cluster: Cluster | None
) -> None:
    where = f"{config.backend}, {config.users:,} users"
    _progress(f"service on {where}: seeding")
    url, _ = _database(config, work, cluster, "svc")
    data_dir = work / f"data-{config.backend}-{config.users}"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(url, data_dir, work)
    client_id, client_secret = _prepare(config, env, url)

    for tls, names in ((False, config.scenarios), (True, config.tls_scenarios)):
        if not names:
            continue
        _progress(f"service on {where}{' over TLS' if tls else ''}: {', '.join(names)}")
        target = _start(
            report,
            plan,
            config,
            env,
            work,
            logs,
            tls=tls,
            cold_starts=0 if tls else plan.cold_starts,
        )
        try:
            service = Service(report, plan, target, client_id, client_secret, logs)
            for name in names:
                service.run(name)
        finally:
            target.server.stop()

    if config.peer:
        _progress(f"peer (fastapi-users) on {where}")
        _, async_url = _database(config, work, cluster, "peer")
        scenarios.peer(report, plan, config.backend, config.users, async_url, logs)
