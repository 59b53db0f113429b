"""The bearer check's PostgreSQL read runs on the event loop over connections of
its own (db/postgres/async_reads.py). They must survive the server dropping them
(a database restart, a failover, an idle timeout) without a failed request, and
a database that is gone must still give 503, never access (H3)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.support.accounts import bearer
from tests.support.postgres import terminate_other_sessions

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def test_bearer_check_survives_the_server_dropping_its_connections(
    client: TestClient, user: dict[str, Any], db_url: str
) -> None:
    token = user["tokens"]["access_token"]
    for _ in range(3):
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
    assert terminate_other_sessions(db_url) >= 1
    # The idle connection is dead now: retried once on a new one, invisibly.
    me = client.get("/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["email"] == user["email"]


def test_many_concurrent_bearer_checks_share_a_bounded_set_of_connections(
    client: TestClient, user: dict[str, Any], db_url: str
) -> None:
    token = user["tokens"]["access_token"]
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        statuses = list(
            pool.map(
                lambda _: client.get("/users/me", headers=bearer(token)).status_code, range(120)
            )
        )
    assert statuses == [200] * 120
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            sessions = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            ).scalar_one()
    finally:
        engine.dispose()
    # 8 for the event-loop reader, SQLAlchemy's pool (16 + 8) for the rest, this one.
    assert sessions <= 8 + 24 + 1
