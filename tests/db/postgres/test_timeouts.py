"""PostgreSQL time limits (N8): a serving connection's statement that runs past
`database_statement_timeout_ms` is cancelled by the server and answered 503 with
Retry-After, on the event-loop reader and on the pool alike; the command line's
connections (migrations, prune, backup) have no such limit; a pruning batch has
limits of its own (long, but finite: a batch behind a held lock gives up); the
pool is bounded."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.problems import assert_problem
from tests.support.storage import add_user
from userservice.app import create_app, pool_options
from userservice.db.engine import PoolOptions, build_engine, open_database
from userservice.db.models import RevokedAccessToken
from userservice.db.postgres.async_reads import conninfo
from userservice.services.pruning import BackgroundPruner
from userservice.services.retention import prune_expired
from userservice.settings import Settings

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
TIMEOUT_MS = 300
# A pruning batch's lock_timeout (db/postgres/backend.py).
BATCH_LOCK_LIMIT = 5.0


@contextmanager
def users_locked(
    db_url: str, table: str = "users", mode: str = "ACCESS EXCLUSIVE"
) -> Iterator[None]:
    """Another session holds the table: any statement the mode excludes waits."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text(f"LOCK TABLE {table} IN {mode} MODE"))
            yield
    finally:
        engine.dispose()


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_n8_a_statement_past_the_timeout_answers_503_on_both_paths(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    app = create_app(make_settings(database_statement_timeout_ms=TIMEOUT_MS))
    with TestClient(app, base_url="https://testserver") as client:
        register(client, "slow@example.com")
        token = login(client, "slow@example.com")["access_token"]
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        with users_locked(db_url):
            # The bearer check reads the user on the event-loop reader...
            me, waited = _timed(lambda: client.get("/users/me", headers=bearer(token)))
            assert me.status_code == 503, me.text
            assert me.headers["retry-after"] == "1"
            assert assert_problem(me)["code"] == "database_unavailable"
            # ... the timeout, not the lock's end, ended it (and no retry doubled it).
            assert waited < 2 * TIMEOUT_MS / 1000 + 1.0, waited
            # A sign-up writes through the pooled engine.
            signup, waited = _timed(
                lambda: client.post(
                    "/users", json={"email": "new@example.com", "password": PASSWORD}
                )
            )
            assert signup.status_code == 503, signup.text
            assert signup.headers["retry-after"] == "1"
            assert assert_problem(signup)["code"] == "database_unavailable"
        # The cancelled statements left their connections usable.
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        register(client, "after@example.com")


def test_n8_serving_connections_have_the_limit_and_the_command_line_none(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    settings = make_settings(
        database_statement_timeout_ms=TIMEOUT_MS, database_connect_timeout_seconds=7
    )
    serving = build_engine(db_url, pool=pool_options(settings))
    command_line = build_engine(db_url)
    try:
        assert _show(serving, "statement_timeout") == f"{TIMEOUT_MS}ms"
        assert _show(command_line, "statement_timeout") == "0"
        # The event-loop reader connects with the same parameters as the pool.
        with psycopg.connect(conninfo(serving.url)) as raw:
            assert raw.execute("SHOW statement_timeout").fetchone() == (f"{TIMEOUT_MS}ms",)
            assert raw.info.get_parameters()["connect_timeout"] == "7"
    finally:
        serving.dispose()
        command_line.dispose()


def _show(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(f"SHOW {name}")).scalar_one())


def test_n8_the_pool_is_bounded_and_a_wait_for_it_is_bounded(db_url: str) -> None:
    engine = build_engine(db_url, pool=PoolOptions(size=2, timeout_seconds=0.5))
    try:
        held = [engine.connect() for _ in range(3)]  # 2 pooled + 1 overflow
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            engine.connect()
        assert 0.4 < time.monotonic() - started < 3
        for conn in held:
            conn.close()
    finally:
        engine.dispose()


def test_n8_pruning_in_a_serving_process_is_not_cut_by_the_timeout(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    """A pruning batch that waits past the serving statement_timeout (here on a
    lock another session holds) still completes: its transaction lifts the limit."""
    settings = make_settings(database_statement_timeout_ms=TIMEOUT_MS)
    db = open_database(build_engine(db_url, pool=pool_options(settings)))
    add_user(db)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with db.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="old", expires_at=past))
    outcome: list[dict[str, int] | None] = []
    try:
        with users_locked(db_url, table="revoked_access_tokens", mode="SHARE"):
            pruning = threading.Thread(target=lambda: outcome.append(prune_expired(db, settings)))
            pruning.start()
            deadline = time.monotonic() + 10
            while not _waiting_on_a_lock(db_url):
                assert time.monotonic() < deadline, "the pass never met the lock"
                time.sleep(0.02)
            # Held well past the timeout before letting go.
            time.sleep(3 * TIMEOUT_MS / 1000)
        pruning.join(timeout=30)
    finally:
        db.dispose()
    assert outcome and outcome[0] is not None
    assert outcome[0]["revoked_access_tokens"] == 1


def _waiting_on_a_lock(db_url: str) -> bool:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_n8_a_pruning_batch_behind_a_held_lock_gives_up_and_the_pass_warns(
    make_settings: Callable[..., Settings], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch waiting on a lock that is not let go (a long transaction, a
    migration's ACCESS EXCLUSIVE) ends at its lock_timeout: the pass ends with a
    warning, lets go of the prune turn, and the next pass deletes the rows."""
    caplog.set_level(logging.INFO, logger="userservice.pruning")
    settings = make_settings(database_statement_timeout_ms=TIMEOUT_MS)
    db = open_database(build_engine(db_url, pool=pool_options(settings)))
    add_user(db)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with db.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="old", expires_at=past))
    pruner = BackgroundPruner(db, settings)
    outcome: list[dict[str, int] | None] = []
    limit = BATCH_LOCK_LIMIT
    pruning = threading.Thread(target=lambda: outcome.append(asyncio.run(pruner.run_once())))
    try:
        with users_locked(db_url, table="revoked_access_tokens"):
            started = time.monotonic()
            pruning.start()
            # Held until the pass has ended (or well past its limit, then released).
            pruning.join(timeout=limit + 5)
            took = time.monotonic() - started
            assert not pruning.is_alive(), "the pass still waits on the lock"
        assert outcome == [None]
        assert limit - 0.5 < took < limit + 5, took
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "lock timeout" in warnings[0], warnings
        with db.prune_turn() as ours:  # the failed pass let go of the turn
            assert ours
        counts = asyncio.run(pruner.run_once())
    finally:
        if pruning.ident is not None:
            pruning.join(timeout=30)
        db.dispose()
    assert counts is not None and counts["revoked_access_tokens"] == 1


def test_n8_pruning_batches_have_limits_of_their_own(db_url: str) -> None:
    """Far above a serving request's, finite all the same (N8)."""
    db = open_database(build_engine(db_url))
    try:
        with db.unit_of_work(unbounded=True) as uow:
            shown = [
                str(uow.execute(text(f"SHOW {name}")).scalar_one())
                for name in ("lock_timeout", "statement_timeout", "jit")
            ]
    finally:
        db.dispose()
    assert shown == ["5s", "5min", "off"]
