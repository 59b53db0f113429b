"""Group commit of SQLite writes (db/group_commit.py): units queued together share
one transaction, each in its own savepoint, and each caller gets its own result
or its own exception."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from userservice.db.engine import Database
from userservice.db.group_commit import GroupCommitter
from userservice.db.models import RevokedAccessToken

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

EXPIRES = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.services.accounts.db
    return database


def _deny(jti: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(insert(RevokedAccessToken).values(jti=jti, expires_at=EXPIRES))
        return jti

    return work


def _refused(jti: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        _deny(jti)(conn)  # written, then undone with its savepoint
        raise LookupError(jti)

    return work


def _stored(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.scalars(select(RevokedAccessToken.jti)))


def _gather(*calls: Awaitable[Any]) -> list[Any]:
    async def main() -> list[Any]:
        return list(await asyncio.gather(*calls, return_exceptions=True))

    return asyncio.run(main())


def test_each_unit_gets_its_own_result_and_a_refusal_undoes_only_its_own(
    db: Database,
) -> None:
    results = _gather(
        db.write_batched(_deny("a")),
        db.write_batched(_refused("b")),
        db.write_batched(_deny("c")),
        db.write_batched(_deny("a")),  # duplicate key: fails alone
        db.write_batched(_deny("d")),
    )
    assert results[0] == "a" and results[2] == "c" and results[4] == "d"
    assert isinstance(results[1], LookupError)
    assert isinstance(results[3], IntegrityError)
    assert _stored(db) == {"a", "c", "d"}


def test_units_queued_together_share_one_transaction(db: Database) -> None:
    def transaction_id(conn: Connection) -> int:
        # A temp table's rows are visible only within this connection's transaction
        # sequence; the counter shows whether the units ran on one connection in one go.
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS seen (n INTEGER)"))
        conn.execute(text("INSERT INTO seen VALUES (1)"))
        return int(conn.execute(text("SELECT count(*) FROM seen")).scalar_one())

    gate = threading.Event()
    committer = GroupCommitter(db.engine, None, {}, 5.0)

    async def main() -> list[int]:
        blocker = asyncio.ensure_future(committer.run(lambda conn: gate.wait(5)))
        await asyncio.sleep(0.05)  # the writer thread is now busy with `blocker`
        queued = [asyncio.ensure_future(committer.run(transaction_id)) for _ in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        return list(await asyncio.gather(*queued))

    try:
        counts = asyncio.run(main())
    finally:
        committer.close()
    assert counts == [1, 2, 3, 4, 5]  # one batch: each saw the rows of those before it


def test_a_held_writer_lock_fails_the_batch_with_database_locked(db: Database) -> None:
    lock = db._writer_lock
    assert lock is not None
    committer = GroupCommitter(db.engine, lock, {}, 0.2)
    holder_ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        lock.acquire(timeout=5)
        holder_ready.set()
        release.wait(5)
        lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    holder_ready.wait(5)
    try:
        results = _gather(committer.run(_deny("x")), committer.run(_deny("y")))
    finally:
        release.set()
        holder.join()
        committer.close()
    assert all(isinstance(result, OperationalError) for result in results)
    assert "database is locked" in str(results[0])
    assert _stored(db) == set()


def test_the_writer_thread_stops_on_dispose_and_restarts_on_demand(db: Database) -> None:
    assert _gather(db.write_batched(_deny("before")))[0] == "before"
    committer = db._group_commit
    assert committer is not None and committer._thread is not None
    thread = committer._thread
    committer.close()
    assert not thread.is_alive()
    assert _gather(db.write_batched(_deny("after")))[0] == "after"
    assert _stored(db) == {"before", "after"}
