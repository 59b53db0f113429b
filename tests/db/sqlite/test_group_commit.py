"""Group commit of SQLite writes (db/sqlite/group_commit.py), behind the backend's
`write` and `succeed`: units queued together share one transaction, each in its
own savepoint, and each caller gets its own result or its own exception."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from userservice.db.backend import Database
from userservice.db.models import RevokedAccessToken
from userservice.db.sqlite.backend import SqliteDatabase
from userservice.db.sqlite.group_commit import GroupCommitter
from userservice.db.statement import Statement

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

EXPIRES = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


# Typed by the column: the backend's codec encodes the bound datetime.
DENY = Statement(
    insert(RevokedAccessToken).values(
        jti=bindparam("jti"),
        expires_at=bindparam("expires_at", type_=RevokedAccessToken.__table__.c.expires_at.type),
    )
)


@pytest.fixture
def db(database: Database) -> SqliteDatabase:
    assert isinstance(database, SqliteDatabase)
    return database


def _write(db: Database, jti: str) -> Awaitable[list[tuple[Any, ...]]]:
    return db.write(DENY, {"jti": jti, "expires_at": EXPIRES})


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
    with db.unit_of_work(read_only=True) as session:
        return set(session.scalars(select(RevokedAccessToken.jti)))


def _gather(*calls: Awaitable[Any]) -> list[Any]:
    async def main() -> list[Any]:
        return list(await asyncio.gather(*calls, return_exceptions=True))

    return asyncio.run(main())


def test_each_unit_gets_its_own_result_and_a_refusal_undoes_only_its_own(
    db: SqliteDatabase,
) -> None:
    committer = db._group_commit
    results = _gather(
        committer.run(_deny("a")),
        committer.run(_refused("b")),
        committer.run(_deny("c")),
        committer.run(_deny("a")),  # duplicate key: fails alone
        committer.run(_deny("d")),
    )
    assert results[0] == "a" and results[2] == "c" and results[4] == "d"
    assert isinstance(results[1], LookupError)
    assert isinstance(results[3], IntegrityError)
    assert _stored(db) == {"a", "c", "d"}


def test_backend_writes_share_the_batch_and_fail_alone(db: SqliteDatabase) -> None:
    """The hot statements' writes (Database.write) go through the same writer: a
    duplicate key fails its own caller only, as a SQLAlchemy error (a 503 or a
    refusal upstream, never a 500 from a bare sqlite3 error)."""
    results = _gather(_write(db, "e"), _write(db, "e"), _write(db, "f"))
    assert results[0] == [] and results[2] == []
    assert isinstance(results[1], IntegrityError)
    assert _stored(db) == {"e", "f"}


def test_units_queued_together_share_one_transaction(db: SqliteDatabase) -> None:
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


def test_a_held_writer_lock_fails_the_batch_with_database_locked(db: SqliteDatabase) -> None:
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


def test_the_writer_thread_stops_on_close_and_restarts_on_demand(db: SqliteDatabase) -> None:
    assert _gather(_write(db, "before"))[0] == []
    committer = db._group_commit
    assert committer._thread is not None
    thread = committer._thread
    committer.close()
    assert not thread.is_alive()
    assert _gather(_write(db, "after"))[0] == []
    assert _stored(db) == {"before", "after"}
