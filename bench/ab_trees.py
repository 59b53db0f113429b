"""One source tree under `bench.ab`: a fresh database migrated and seeded by that
tree's own code, one uvicorn process of it (no --workers, no TLS), wrapped in the
`Service` of `make bench`, so every scenario is built and measured as there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import seed
from bench.pg import Cluster
from bench.plan import Plan
from bench.report import Report, Row
from bench.run import BYTECODE_CACHE
from bench.scenarios import Target
from bench.scenarios_service import Service
from bench.servers import HOST, Server, ServerFailed, free_port
from bench.stages import service_env

APP = "userservice.app:create_app_from_env"
LOG_TAIL_CHARS = 3000


class QuietReport(Report):
    """Rows kept, not printed: bench.ab prints one line per tree, round and scenario."""

    def add(self, row: Row) -> None:
        self.rows.append(row)


def tree_env(tree: Path) -> dict[str, str]:
    """What makes `python -m userservice.cli` and uvicorn import `tree`'s package: the
    harness runs from its own tree, and `python -m` would put the working directory
    first on sys.path (PYTHONSAFEPATH keeps it off); the editable install's path
    comes after PYTHONPATH. Bytecode is cached (per source path, so per tree), as
    `make bench` does, so each start does not compile every import again."""
    return {
        "PYTHONPATH": str(tree),
        "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(BYTECODE_CACHE),
    }


def check_tree(tree: Path) -> None:
    """Refuse to measure a tree whose package is not the one imported."""
    probe = "import userservice; print(userservice.__file__)"
    env = {**os.environ, **tree_env(tree)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    found = Path(done.stdout.strip()).resolve()
    if done.returncode != 0 or not found.is_relative_to(tree / "userservice"):
        raise RuntimeError(f"{tree}: imports userservice from {found or done.stderr.strip()}")


@contextmanager
def databases(postgres: bool, work: Path) -> Iterator[Callable[[], str]]:
    """A maker of fresh, empty databases: SQLite files in `work`, or databases of the
    test suite's throwaway PostgreSQL cluster (one cluster for the whole run)."""
    if not postgres:
        yield lambda: f"sqlite:///{work / ('ab_' + uuid.uuid4().hex[:12])}.db"
        return
    cluster = Cluster()
    try:
        yield lambda: cluster.create_database("ab_" + uuid.uuid4().hex[:12])
    finally:
        cluster.stop()


def _prepare(env: dict[str, str], url: str, users: int, password_hash: str) -> tuple[str, str]:
    """Migrated by the tree's CLI, seeded as `make bench` seeds; returns the
    confidential client (id, secret) the tree's CLI registered."""
    seed.migrate(env)
    seed.seed_users(url, users, password_hash)
    seed.create_admin(env)
    return seed.create_confidential_client(env)


def _server(tree: Path, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", APP, "--host", HOST]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    # One process without --workers: its own PID is the server whose CPU is measured.
    server = Server(f"userservice ({tree})", argv, port, "/readyz", env=env, cwd=tree, log=log)
    try:
        server.start(expected_workers=0)
    except ServerFailed as exc:
        tail = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise ServerFailed(f"{exc}; its log ends:\n{tail}") from None
    return server


@contextmanager
def running(
    tree: Path,
    url: str,
    work: Path,
    plan: Plan,
    *,
    backend: str,
    users: int,
    password_hash: str,
) -> Iterator[Service]:
    """`tree` serving a fresh database at `url`; stopped by its PID on exit."""
    tag = uuid.uuid4().hex[:8]
    data_dir = work / f"data-{tag}"
    data_dir.mkdir()
    env = {**service_env(url, data_dir, work), **tree_env(tree)}
    client_id, client_secret = _prepare(env, url, users, password_hash)
    server = _server(tree, env, work / f"server-{tag}.log")
    try:
        target = Target(server, "service", backend, users)
        yield Service(QuietReport("ab", ""), plan, target, client_id, client_secret, work)
    finally:
        server.stop()
