"""A/B of the bearer hot path (`GET /users/me`) between two source trees, run
interleaved on one machine: the server's own CPU time per request (from /proc,
which a busy machine disturbs far less than throughput) and req/s, per round and
as medians. For a change to the bearer path, beside (not instead of) `make bench`:

    git worktree add /tmp/before <rev>
    .venv/bin/python -m bench.ab --rounds 6 /tmp/before .            # SQLite
    .venv/bin/python -m bench.ab --rounds 6 --postgres /tmp/before .

Each run: a fresh database migrated by that tree, one uvicorn worker without TLS on
127.0.0.1, a registered user's password-grant token, 2 s of warm-up, then 8 s of wrk
(16 connections); every server is stopped by its PID."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.servers import HOST, cpu_seconds, free_port

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account


def _post(url: str, data: dict[str, str], *, form: bool = False) -> dict[str, object]:
    body = (urllib.parse.urlencode(data) if form else json.dumps(data)).encode()
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    request = urllib.request.Request(url, body, {"Content-Type": kind})  # noqa: S310
    with urllib.request.urlopen(request) as response:  # noqa: S310 - our loopback server
        found: dict[str, object] = json.loads(response.read() or b"{}")
    return found


def _wrk(url: str, token: str, seconds: int) -> int:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return int(next(line for line in out.splitlines() if "requests in" in line).split()[0])


@contextmanager
def _server(tree: Path, database_url: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "USERSERVICE_ENV_FILE": "/dev/null",
        "USERSERVICE_DATA_DIR": tempfile.mkdtemp(prefix="bench-ab-"),
        "USERSERVICE_ISSUER": f"http://{HOST}:{port}",
        "USERSERVICE_DATABASE_URL": database_url,
    }
    command = [sys.executable, "-m", "userservice.cli", "db", "upgrade"]
    subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True)
    app = "userservice.app:create_app_from_env"
    options = ["--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    # One uvicorn process without --workers: it is the worker whose CPU is measured.
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app, *options], cwd=tree, env=env
    )
    try:
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz")  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{tree}: the server did not start") from None
                time.sleep(0.05)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run(tree: Path, database_url: str, seconds: int) -> tuple[float, float]:
    with _server(tree, database_url) as (base, pid):
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        _post(base + "/users", {"email": email, "password": PASSWORD})
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        token = str(_post(base + "/oauth/token", form, form=True)["access_token"])
        url = base + "/users/me"
        _wrk(url, token, 2)
        before = cpu_seconds(pid)
        requests = _wrk(url, token, seconds)
        used = cpu_seconds(pid) - before
    return requests / seconds, used / requests * 1e6


def _databases(postgres: bool) -> Iterator[Callable[[], str]]:
    if not postgres:
        yield lambda: f"sqlite:///{tempfile.mkdtemp(prefix='bench-ab-')}/ab.db"
        return
    from sqlalchemy import create_engine, text

    from tests.support.postgres import start_postgres

    server = start_postgres()
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    try:

        def fresh() -> str:
            name = "ab_" + uuid.uuid4().hex[:12]
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            return server.url(name)

        yield fresh
    finally:
        admin.dispose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    trees = (args.before.resolve(), args.after.resolve())
    results: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in trees}
    for fresh in _databases(args.postgres):
        for round_number in range(args.rounds):
            order = trees if round_number % 2 == 0 else trees[::-1]
            for tree in order:
                rps, cpu_us = _run(tree, fresh(), args.seconds)
                results[tree].append((rps, cpu_us))
                print(f"{tree}: {rps:8.0f} req/s  {cpu_us:6.1f} us CPU/request", flush=True)
    for tree, runs in results.items():
        rps = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(f"median {tree}: {rps:.0f} req/s, {cpu:.1f} us CPU/request")


if __name__ == "__main__":
    main()
