"""SQLite writers take the write lock when their transaction starts (BEGIN
IMMEDIATE) and queue on a lock of the process, instead of upgrading a read lock
mid-transaction (which fails at once with "database is locked") or sleep-polling
in SQLite's busy handler (which set the pace of refresh under concurrency):
db/sqlite/writer_lock.py, taken by the SQLite backend's units of work."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from userservice.db.backend import Database

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def db(database: Database) -> Database:
    return database


def _other_writer_can_begin(db: Database) -> bool:
    path = Path(str(db.engine.url.database))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_a_unit_of_work_holds_the_write_lock_from_its_start(db: Database) -> None:
    with db.unit_of_work() as session:
        session.execute(text("SELECT 1"))  # a read first: the lock is already ours
        assert not _other_writer_can_begin(db)
    assert _other_writer_can_begin(db)


def test_a_read_only_unit_of_work_never_blocks_writers(db: Database) -> None:
    with db.unit_of_work(read_only=True) as session:
        session.execute(text("SELECT count(*) FROM users")).scalar_one()
        assert _other_writer_can_begin(db)


def test_writers_of_one_process_queue_instead_of_failing(db: Database) -> None:
    order: list[str] = []
    errors: list[BaseException] = []

    def write(name: str, hold: float) -> None:
        try:
            with db.unit_of_work() as session:
                order.append(f"{name} in")
                session.execute(text("SELECT count(*) FROM users")).scalar_one()
                time.sleep(hold)
                session.execute(
                    text("UPDATE users SET tokens_valid_after = tokens_valid_after + 1")
                )
                order.append(f"{name} out")
        except BaseException as exc:  # reported below
            errors.append(exc)

    first = threading.Thread(target=write, args=("a", 0.3))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=write, args=("b", 0.0))
    second.start()
    first.join(10)
    second.join(10)
    assert errors == []
    assert order == ["a in", "a out", "b in", "b out"]


def test_writers_of_other_processes_take_turns_on_the_lock_file(db: Database) -> None:
    """flock(2) locks belong to an open file: a second open of the lock file stands
    for another worker process holding it."""
    other = os.open(f"{db.engine.url.database}.writer-lock", os.O_RDWR | os.O_CREAT)
    done = threading.Event()

    def write() -> None:
        with db.unit_of_work() as session:
            session.execute(text("UPDATE users SET tokens_valid_after = 0"))
        done.set()

    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.3)  # waiting for the other "process"
        fcntl.flock(other, fcntl.LOCK_UN)
        assert done.wait(5)
        writer.join(5)
    finally:
        os.close(other)
