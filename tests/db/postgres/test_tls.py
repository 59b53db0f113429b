"""TLS to PostgreSQL: `sslmode` and `sslrootcert` ride in the database URL's query
and reach libpq on every connection (the pool's and the event-loop reader's); a
TLS-enabled throwaway server with a certificate of a test CA checks that
verify-full works end to end and that a wrong CA or a server without TLS is one
line from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.support.accounts import bearer, login, register
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.postgres import PostgresServer, start_postgres
from userservice.app import create_app
from userservice.settings import Settings


@dataclass
class TlsPostgres:
    server: PostgresServer
    ca: Path
    other_ca: Path

    def url(self, ca: Path, mode: str = "verify-full") -> str:
        return f"{self.server.url('postgres')}?sslmode={mode}&sslrootcert={ca}"


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    directory = tmp_path_factory.mktemp("pg-tls")
    ca, other = trustme.CA(), trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "server.crt", directory / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    other.cert_pem.write_to_path(str(directory / "other-ca.pem"))
    server = start_postgres(tls=(cert, key))
    yield TlsPostgres(server, directory / "ca.pem", directory / "other-ca.pem")
    server.stop()


def test_verify_full_migrates_serves_and_every_connection_is_tls(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    url = tls_postgres.url(tls_postgres.ca)
    upgraded = run_cli(tmp_path / "data", "db", "upgrade", USERSERVICE_DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, data_dir=tmp_path, issuer="https://testserver"
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        register(client, "tls@example.com")
        token = login(client, "tls@example.com")["access_token"]
        # The bearer check reads on the event-loop reader; sign-up wrote on the pool.
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        sessions = _sessions(tls_postgres.server)
    assert len(sessions) >= 2, sessions  # the pool's and the reader's, at least
    assert all(ssl for _, ssl in sessions), sessions


def _sessions(server: PostgresServer) -> list[tuple[Any, bool]]:
    """Client sessions other than this one, and whether each speaks TLS."""
    engine = create_engine(server.admin_url)  # no sslmode: libpq's default, prefer
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s "
                    "USING (pid) WHERE a.backend_type = 'client backend' "
                    "AND a.pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        engine.dispose()
    return [(pid, bool(ssl)) for pid, ssl in rows]


def test_a_certificate_of_another_ca_is_one_line(tls_postgres: TlsPostgres, tmp_path: Path) -> None:
    url = tls_postgres.url(tls_postgres.other_ca)
    result = run_cli(tmp_path / "data", "db", "upgrade", USERSERVICE_DATABASE_URL=url)
    assert_one_line_error(result, "database error", "certificate verify failed")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_sslmode_require_against_a_server_without_tls_is_one_line(
    db_url: str, tmp_path: Path
) -> None:
    result = run_cli(
        tmp_path / "data", "db", "upgrade", USERSERVICE_DATABASE_URL=f"{db_url}?sslmode=require"
    )
    assert_one_line_error(result, "database error", "server does not support SSL")
