"""The background pruner (N6): each replica's task runs a pass every interval in a
thread; the deployment's one prune turn lets one pass run at a time (a pass while
another holds it skips); a failing pass logs a warning and the next interval tries
again; stop() ends a pass within one batch, and on PostgreSQL a batch waiting on a
lock held elsewhere gives up within its lock_timeout (N8); interval 0 starts
nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from tests.support.server import free_port
from tests.support.storage import add_user
from tests.support.wiring import storage_of
from userservice.app import create_app
from userservice.db import prune as prune_module
from userservice.db.backend import Database
from userservice.db.engine import PoolOptions, build_engine, open_database
from userservice.db.models import RevokedAccessToken
from userservice.db.ports import Storage
from userservice.services.pruning import BackgroundPruner
from userservice.settings import Settings

DEADLINE = 20.0
# A pruning batch's lock_timeout on PostgreSQL (db/postgres/backend.py).
BATCH_LOCK_LIMIT = 5.0


def _expired_deny_list_rows(db: Storage, count: int) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with db.unit_of_work() as uow:
        uow.add_all(RevokedAccessToken(jti=f"j{n:06}", expires_at=past) for n in range(count))


def _deny_list_rows(db: Storage) -> int:
    with db.unit_of_work(read_only=True) as uow:
        return int(uow.scalar(select(func.count()).select_from(RevokedAccessToken)) or 0)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.05)


def test_n6_two_replicas_prune_in_the_background(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.pruning")
    settings = make_settings(prune_interval_seconds=1)
    with ExitStack() as stack:
        apps = [create_app(settings) for _ in range(2)]
        for app in apps:
            stack.enter_context(TestClient(app, base_url="https://testserver"))
        db = storage_of(apps[0])
        _expired_deny_list_rows(db, 30)
        _until(lambda: _deny_list_rows(db) == 0, "the expired rows pruned")
        _until(
            lambda: any("pruned:" in r.message for r in caplog.records),
            "a pass's counts logged",
        )
    deleted = [
        int(part.split()[-1])
        for record in caplog.records
        if record.message.startswith("pruned:")
        for part in record.message.removeprefix("pruned: ").split(", ")
        if part.startswith("revoked_access_tokens")
    ]
    assert sum(deleted) == 30  # every row deleted once, by one pass or another
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_n6_a_pass_while_another_holds_the_turn_skips(
    database: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.pruning")
    add_user(database)
    _expired_deny_list_rows(database, 3)
    holder = open_database(build_engine(str(settings.resolved_database_url())))
    pruner = BackgroundPruner(database, settings)
    try:
        with holder.prune_turn() as held:
            assert held
            assert asyncio.run(pruner.run_once()) is None
            assert _deny_list_rows(database) == 3
            assert "pruning skipped: another process is pruning" in caplog.messages
        counts = asyncio.run(pruner.run_once())
        assert counts is not None and counts["revoked_access_tokens"] == 3
    finally:
        holder.dispose()


def test_n6_a_failing_pass_warns_and_the_next_interval_tries_again(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.pruning")
    # Nothing listens there: every pass fails to connect.
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    db = open_database(build_engine(down, pool=PoolOptions(connect_timeout_seconds=1)))
    pruner = BackgroundPruner(db, settings.model_copy(update={"prune_interval_seconds": 1}))

    async def run() -> None:
        pruner.start()
        deadline = time.monotonic() + DEADLINE
        while sum(r.levelno == logging.WARNING for r in caplog.records) < 2:
            assert time.monotonic() < deadline, "two failed passes not seen"
            await asyncio.sleep(0.05)
        assert pruner.running  # failures do not end the task
        await pruner.stop()
        assert not pruner.running

    try:
        asyncio.run(run())
    finally:
        db.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all(w.startswith("pruning failed, retrying in 1 s: OperationalError") for w in warnings)


def test_n6_stop_ends_a_pass_in_progress_within_a_batch(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune_module, "BATCH", 1)  # one row per transaction: a long pass
    add_user(database)
    _expired_deny_list_rows(database, 3000)
    pruner = BackgroundPruner(database, settings.model_copy(update={"prune_interval_seconds": 1}))

    async def run() -> float:
        pruner.start()
        deadline = time.monotonic() + DEADLINE
        while _deny_list_rows(database) == 3000:
            assert time.monotonic() < deadline, "the pass did not begin"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await pruner.stop()
        return time.monotonic() - started

    took = asyncio.run(run())
    left = _deny_list_rows(database)
    assert 0 < left < 3000, left  # ended mid-pass, between batches
    assert took < 2.0, took
    # The database was let go in a sound state: the next pass finishes the job.
    monkeypatch.setattr(prune_module, "BATCH", 500)
    counts = asyncio.run(BackgroundPruner(database, settings).run_once())
    assert counts is not None and counts["revoked_access_tokens"] == left


def test_n6_interval_0_starts_no_task(database: Database, settings: Settings) -> None:
    pruner = BackgroundPruner(database, settings.model_copy(update={"prune_interval_seconds": 0}))

    async def run() -> bool:
        pruner.start()
        running = pruner.running
        await pruner.stop()
        return running

    assert asyncio.run(run()) is False


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_n6_stop_while_a_batch_waits_on_a_lock_ends_within_the_lock_timeout(
    database: Database, settings: Settings, db_url: str
) -> None:
    """A migration's ACCESS EXCLUSIVE lock (or a long transaction) held past a
    shutdown does not hold the shutdown up: the waiting batch gives up."""
    add_user(database)
    _expired_deny_list_rows(database, 3)
    pruner = BackgroundPruner(database, settings.model_copy(update={"prune_interval_seconds": 1}))
    other = create_engine(db_url)

    def waiting_on_a_lock() -> bool:
        with other.connect() as conn:  # a fresh transaction: pg_stat_activity is current
            return bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar_one()
            )

    async def run() -> float:
        with other.connect() as holder, holder.begin():
            holder.execute(text("LOCK TABLE revoked_access_tokens IN ACCESS EXCLUSIVE MODE"))
            pruner.start()
            deadline = time.monotonic() + DEADLINE
            while not waiting_on_a_lock():
                assert time.monotonic() < deadline, "the pass never met the lock"
                await asyncio.sleep(0.02)
            started = time.monotonic()
            try:
                await asyncio.wait_for(pruner.stop(), timeout=BATCH_LOCK_LIMIT + 5)
            except TimeoutError:
                return float("inf")
            return time.monotonic() - started

    try:
        took = asyncio.run(run())
    finally:
        other.dispose()
    assert took < BATCH_LOCK_LIMIT + 1, took
    assert not pruner.running
    assert _deny_list_rows(database) == 3  # nothing half done: the next pass deletes them
