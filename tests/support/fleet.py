"""A fleet on loopback: a throwaway PostgreSQL and Redis of its own, N replicas of
`userservice serve --no-tls --workers W` and nginx terminating TLS in front of them.

Each replica is a subprocess in a session (process group) of its own, so that it can
be SIGKILLed whole, workers included, by its PGID. The first replica migrates the
schema, the others start with --no-migrate. Each serves its metrics (every worker
summed) on a port of its own, `Replica.metrics_port`, kept across restarts so that a
scraper's targets (`Fleet.metrics_targets`) stay right. Everything is stopped by PID in `stop()`,
which is safe to call after a failed `start()`. Importing this module starts nothing.

    with Fleet() as fleet:
        httpx.get(f"{fleet.nginx_url}/readyz", verify=fleet.ssl_context())
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.nginx import Nginx
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.processes import Started, group, killpg
from tests.support.redis import RedisServer
from tests.support.redis import start_redis as start_redis_server
from tests.support.replica import DEFAULT_ENV, FleetError, Replica
from tests.support.server import free_port

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
DATABASE = "userservice"


class Fleet(Started):
    def __init__(
        self,
        replicas: int = 3,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.workers = workers
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="userservice-fleet-"))
        self.extra_env = dict(env or {})
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self.nginx = Nginx(self.directory / "nginx", free_port())
        self.replicas = [
            Replica(
                i,
                free_port(),
                self.directory / f"replica-{i}",
                self.directory / f"replica-{i}.log",
                free_port(),
            )
            for i in range(replicas)
        ]
        self.ca_path = self.directory / "ca.pem"
        self.key_encryption_secret = secrets.token_urlsafe(32)

    # -- addresses -------------------------------------------------------------------
    @property
    def nginx_url(self) -> str:
        return f"https://127.0.0.1:{self.nginx.port}"

    @property
    def replica_urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]

    @property
    def metrics_targets(self) -> list[str]:
        return [replica.metrics_target for replica in self.replicas]

    @property
    def database_url(self) -> str:
        if self.postgres is None:
            raise FleetError("the fleet is not started")
        return self.postgres.url(DATABASE)

    @property
    def redis_url(self) -> str:
        if self.redis is None:
            raise FleetError("the fleet is not started")
        return self.redis.url

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the fleet's CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def env(self) -> dict[str, str]:
        """The environment every replica (and a CLI run against the fleet) gets."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("USERSERVICE_")}
        env.update(DEFAULT_ENV)
        env.update(
            USERSERVICE_ENV_FILE="/dev/null",
            USERSERVICE_DATABASE_URL=self.database_url,
            USERSERVICE_REDIS_URL=self.redis_url,
            USERSERVICE_ISSUER=self.nginx_url,
            USERSERVICE_KEY_ENCRYPTION_SECRET=self.key_encryption_secret,
        )
        env.update(self.extra_env)
        return env

    # -- life cycle ------------------------------------------------------------------
    def _start(self) -> None:
        import psycopg

        self.postgres = start_postgres()
        with psycopg.connect(
            f"host=127.0.0.1 port={self.postgres.port} user=postgres dbname=postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        self.redis = start_redis_server()
        self._write_certificates()
        first, *others = self.replicas
        self._launch(first, migrate=True)
        self._wait_ready(first)
        for replica in others:
            self._launch(replica, migrate=False)
        for replica in others:
            self._wait_ready(replica)
        self.nginx.start(
            [r.port for r in self.replicas],
            self.directory / "server.pem",
            self.directory / "server.key",
        )
        self._wait_url(f"{self.nginx_url}/readyz", "nginx", verify=self.ssl_context())

    def stop(self) -> None:
        """Stop everything this fleet started, by PID; never raises for a part that
        already died."""
        self.nginx.stop()
        for replica in self.replicas:
            self._terminate(replica)
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _write_certificates(self) -> None:
        import trustme

        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(self.ca_path))
        server.cert_chain_pems[0].write_to_path(str(self.directory / "server.pem"))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(self.directory / "server.pem"), append=True)
        server.private_key_pem.write_to_path(str(self.directory / "server.key"))

    # -- replicas --------------------------------------------------------------------
    def _launch(self, replica: Replica, *, migrate: bool) -> None:
        replica.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        command = [sys.executable, "-m", "userservice", "serve", "--no-tls"]
        command += ["--host", "127.0.0.1", "--port", str(replica.port)]
        command += ["--workers", str(self.workers)]
        if not migrate:
            command.append("--no-migrate")
        env = self.env()
        env["USERSERVICE_DATA_DIR"] = str(replica.data_dir)
        # The same port after a restart: Prometheus keeps scraping the same target.
        env["USERSERVICE_METRICS_PORT"] = str(replica.metrics_port)
        # The workers' metrics files go to TMPDIR; a replica SIGKILLed cannot remove
        # them, the fleet's directory removed at stop() takes them along.
        tmp = replica.data_dir / "tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        env["TMPDIR"] = str(tmp)
        with replica.log_path.open("ab") as log:
            replica.process = subprocess.Popen(
                command,
                env=env,
                cwd=replica.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, replica: Replica) -> None:
        self._wait_url(f"{replica.url}/readyz", f"replica {replica.index}", replica=replica)

    def _wait_url(
        self,
        url: str,
        what: str,
        *,
        replica: Replica | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: object = None
        while time.monotonic() < deadline:
            if replica is not None and not replica.alive:
                raise FleetError(f"{what} exited: {replica.log()[-3000:]}")
            try:
                response = httpx.get(url, timeout=2, verify=verify)
                if response.status_code == 200:
                    return
                last = (response.status_code, response.text[:300])
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        log = replica.log()[-3000:] if replica is not None else self.nginx.errors()
        raise FleetError(f"{what} was not ready within {START_TIMEOUT} s ({last!r}): {log}")

    def pids(self) -> list[int]:
        """Every process the fleet runs now: each replica's group (master and workers),
        nginx's group, PostgreSQL's postmaster and Redis."""
        found = [pid for r in self.replicas if r.process for pid in group(r.process.pid)]
        if self.nginx.process is not None:
            found += group(self.nginx.process.pid)
        for part in (self.postgres, self.redis):
            if part is not None and part.process is not None and part.process.poll() is None:
                found.append(part.process.pid)
        return found

    def kill_replica(self, index: int) -> None:
        """SIGKILL the replica's whole process group (master and workers): a crash,
        with no graceful shutdown."""
        replica = self.replicas[index]
        if replica.process is None:
            return
        pgid = replica.process.pid
        killpg(pgid, signal.SIGKILL)
        replica.process.wait(timeout=STOP_TIMEOUT)
        replica.process = None
        # SIGKILL reaches the workers asynchronously: wait until none runs.
        deadline = time.monotonic() + STOP_TIMEOUT
        while group(pgid):
            if time.monotonic() > deadline:
                raise FleetError(f"replica {index} still runs after SIGKILL: {group(pgid)}")
            time.sleep(0.01)

    def start_replica(self, index: int) -> None:
        """(Re)start a stopped or killed replica on its port and wait until it is ready."""
        replica = self.replicas[index]
        if replica.alive:
            return
        self._launch(replica, migrate=False)
        self._wait_ready(replica)

    def _terminate(self, replica: Replica) -> None:
        process, replica.process = replica.process, None
        if process is None:
            return
        if process.poll() is None:
            killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        # Workers left behind by a master that died are still in its group.
        killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=STOP_TIMEOUT)

    # -- the shared parts ------------------------------------------------------------
    def restart_postgres(self, down_seconds: float = 0.0) -> tuple[float, float]:
        """Stop PostgreSQL, keep it down for `down_seconds`, start it again on the same
        port and data directory; returns once it accepts connections, with the
        `time.monotonic()` moments it was down from and up again."""
        if self.postgres is None:
            raise FleetError("the fleet is not started")
        stopped: list[float] = []

        def down() -> None:
            stopped.append(time.monotonic())
            time.sleep(down_seconds)

        self.postgres.restart(down)
        return stopped[0], time.monotonic()

    def stop_redis(self) -> None:
        if self.redis is None:
            raise FleetError("the fleet is not started")
        self.redis.stop()

    def start_redis(self) -> None:
        if self.redis is None:
            raise FleetError("the fleet is not started")
        if self.redis.process is None:
            self.redis.start()

    def run_cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """`userservice <args>` against the fleet's database, as an operator runs it."""
        env = self.env()
        env["USERSERVICE_DATA_DIR"] = str(self.directory / "cli")
        return subprocess.run(
            [sys.executable, "-m", "userservice", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.directory,
            timeout=60,
            check=False,
        )
