"""The PostgreSQL pool pings a connection only when it sat idle (db/postgres/connect.py
ping_when_idle): a busy connection goes without the round trip, and a
database restart still costs at most the statements in flight at that moment."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.postgres import terminate_other_sessions
from userservice.db.engine import PoolOptions, build_engine
from userservice.db.postgres.connect import IDLE_PING_SECONDS

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def select_one(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT 1")).scalar_one())


def test_an_idle_connection_the_server_dropped_is_replaced_unnoticed(db_url: str) -> None:
    engine = build_engine(db_url, pool=PoolOptions(size=2))
    try:
        assert select_one(engine) == 1
        assert terminate_other_sessions(db_url) >= 1
        time.sleep(IDLE_PING_SECONDS + 0.3)
        assert select_one(engine) == 1
    finally:
        engine.dispose()


def test_a_busy_connection_is_not_pinged_and_one_failure_renews_the_pool(db_url: str) -> None:
    engine = build_engine(db_url, pool=PoolOptions(size=2))
    try:
        # Two pooled connections, both used a moment ago.
        with engine.connect() as first, engine.connect() as second:
            first.execute(text("SELECT 1"))
            second.execute(text("SELECT 1"))
        assert terminate_other_sessions(db_url) == 2
        # No ping for a connection back in use at once: the statement meets the
        # dropped connection (a 503 for the request), and SQLAlchemy invalidates it
        # and every connection the pool handed out before...
        with pytest.raises(DBAPIError) as failed:
            select_one(engine)
        assert failed.value.connection_invalidated
        # ... so the other dropped connection is never used again.
        with engine.connect() as first, engine.connect() as second:
            assert first.execute(text("SELECT 1")).scalar_one() == 1
            assert second.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
