"""The PostgreSQL side: the test suite's throwaway PostgreSQL 15 cluster
(tests/support/postgres.py, imported, not copied: it handles running as root),
one database per (system, user count) so the service and the peer never share one."""

from __future__ import annotations

import psycopg

from tests.support.postgres import PostgresServer, start_postgres


class Cluster:
    def __init__(self) -> None:
        self.server: PostgresServer = start_postgres()

    def create_database(self, name: str) -> str:
        """A fresh database; returns its psycopg (sync) SQLAlchemy URL."""
        dsn = f"host=127.0.0.1 port={self.server.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.server.url(name)

    def asyncpg_url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.server.port}/{name}"

    def stop(self) -> None:
        self.server.stop()
