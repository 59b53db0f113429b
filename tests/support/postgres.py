"""A throwaway PostgreSQL 15 cluster for the test session.

initdb/postgres refuse to run as root, so on these machines (root everywhere) the
cluster lives in a temporary directory owned by the `postgres` system user and is
started as that user. It listens on 127.0.0.1 only and is stopped by its PID.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text


class PostgresUnavailable(RuntimeError):
    pass


def _find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # postgres' "fast" shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self, while_down: Callable[[], None] | None = None) -> None:
        """Stop the postmaster ("fast" shutdown: what a failover or an upgrade does to
        its clients) and start it again on the same port and data directory, running
        `while_down` in between; waits until it accepts connections again."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if while_down is not None:
            while_down()
        postgres = _find_bin("postgres")
        if postgres is None:
            raise PostgresUnavailable("the postgres binary is gone")
        as_user: dict[str, str] = {}
        if os.geteuid() == 0:
            as_user = {"user": "postgres", "group": "postgres"}
        # A server started with TLS (start_postgres' copies of its files) keeps it.
        cert, key = self.directory / "server.crt", self.directory / "server.key"
        tls_options: list[str] = []
        if cert.exists() and key.exists():
            tls_options = ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}"]
            tls_options += ["-c", f"ssl_key_file={key}"]
        self.process = subprocess.Popen(
            [
                postgres,
                "-D",
                str(self.directory / "data"),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.directory),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                *tls_options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
            **as_user,  # type: ignore[call-overload]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited with {self.process.returncode}")
            try:
                import psycopg

                with psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                    connect_timeout=1,
                ):
                    return
            except Exception:
                time.sleep(0.1)
        raise PostgresUnavailable("postgres did not accept connections within 30 s of a restart")


def start_postgres(tls: tuple[Path, Path] | None = None) -> PostgresServer:
    """`tls`: (certificate chain, private key) PEM files: the server then also
    accepts TLS (`ssl=on`), with copies of them that the `postgres` user owns."""
    initdb, postgres = _find_bin("initdb"), _find_bin("postgres")
    if not initdb or not postgres:
        raise PostgresUnavailable("PostgreSQL binaries (initdb, postgres) are not installed")
    directory = Path(tempfile.mkdtemp(prefix="userservice-pg-"))
    # As root, run initdb and postgres directly as the `postgres` user (no runuser
    # wrapper), so the PID we hold is the postmaster's and signals reach it.
    as_user: dict[str, str] = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root but there is no 'postgres' user") from None
        os.chown(directory, user.pw_uid, user.pw_gid)
        as_user = {"user": "postgres", "group": "postgres"}
    data = directory / "data"
    result = subprocess.run(
        [
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=directory,
        **as_user,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {result.stderr.strip()[-500:]}")
    port = _free_port()
    tls_options: list[str] = []
    if tls is not None:
        cert, key = directory / "server.crt", directory / "server.key"
        shutil.copyfile(tls[0], cert)
        shutil.copyfile(tls[1], key)
        key.chmod(0o600)  # postgres refuses a key others may read
        if as_user:
            for path in (cert, key):
                os.chown(path, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        tls_options = ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
    process = subprocess.Popen(
        [
            postgres,
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(directory),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
            *tls_options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
        **as_user,  # type: ignore[call-overload]
    )
    server = PostgresServer(directory, port, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres"):
                return server
        except Exception:
            time.sleep(0.2)
    server.stop()
    raise PostgresUnavailable("postgres did not accept connections within 30 s")


def terminate_other_sessions(db_url: str) -> int:
    """What a database restart or failover does to our pooled connections."""
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(ended)
