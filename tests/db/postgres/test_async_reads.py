"""The bearer check's PostgreSQL read runs on the event loop over connections of
its own (db/postgres/async_reads.py). They must survive the server dropping them
(a database restart, a failover, an idle timeout) without a failed request, and
a database that is gone must still give 503, never access (H3)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Float, bindparam, create_engine, func, select, text

from tests.support.accounts import bearer
from tests.support.postgres import terminate_other_sessions
from userservice.db.engine import PoolOptions, build_engine, open_database
from userservice.db.statement import Statement
from userservice.observability.db_pool import watch_pool
from userservice.observability.prometheus import PrometheusMetrics

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


def test_pool_gauges_count_the_reader_connections(db_url: str) -> None:
    """The hot-path reader's connections are in the pool gauges: its size in the
    limit, a statement's connection in use while it runs, given back after."""
    db = open_database(build_engine(db_url, pool=PoolOptions(size=4)))
    metrics = PrometheusMetrics()
    watch_pool(db, metrics.pool_in_use, metrics.pool_limit)
    gauge = metrics.registry.get_sample_value
    # SQLAlchemy's pool (4 plus half as many for bursts) and the reader's 8.
    assert gauge("userservice_db_pool_connections_limit") == 4 + 2 + 8
    sleep = Statement(select(func.pg_sleep(bindparam("seconds", type_=Float))))
    seen: list[float | None] = []

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(db.fetch, sleep, {"seconds": 0.5})
            tasks.start_soon(db.fetch, sleep, {"seconds": 0.5})
            await anyio.sleep(0.25)
            seen.append(gauge("userservice_db_pool_connections_in_use"))
        seen.append(gauge("userservice_db_pool_connections_in_use"))
        await db.close_async()

    try:
        anyio.run(main)
    finally:
        db.dispose()
    assert seen == [2, 0]
