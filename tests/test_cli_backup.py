"""`userservice backup PATH` (N7): a copy of the SQLite database that is consistent
while the service writes, 0600, never over an existing file; the file appears under
its name only once it is complete and checked (a backup killed or failing midway
leaves no file there); one-line errors; a PostgreSQL deployment is pointed to
pg_dump."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.storage import database as database
from userservice.db.backend import Database
from userservice.db.migrate import head_revision
from userservice.db.models import AuditEvent
from userservice.db.sqlite.backup import BackupCheckFailed, backup_sqlite

NOW = dt.datetime.now(dt.UTC)
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _pairs_while(database: Database, done: threading.Event, written: list[int]) -> None:
    """Writes events in pairs, each pair one transaction: a consistent copy holds
    both halves of every pair it holds."""
    n = 0
    while not done.is_set():
        with database.unit_of_work() as uow:
            uow.add(AuditEvent(occurred_at=NOW, event="pair.first", details=str(n)))
            uow.add(AuditEvent(occurred_at=NOW, event="pair.second", details=str(n)))
        n += 1
        written.append(n)


@sqlite_only
def test_n7_a_backup_while_the_service_writes_is_consistent_and_usable(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    with database.unit_of_work() as uow:  # some bulk, so the copy takes a moment
        uow.add_all(
            AuditEvent(occurred_at=NOW, event="bulk", details="x" * 200) for _ in range(20000)
        )
    done, written = threading.Event(), [0]
    writer = threading.Thread(target=_pairs_while, args=(database, done, written))
    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    writer.start()
    try:
        before = written[-1]
        result = run_cli(tmp_path / "data", "backup", str(copy), USERSERVICE_DATABASE_URL=db_url)
        during = written[-1] - before
    finally:
        done.set()
        writer.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert during > 0  # the service wrote while the command ran
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        halves = dict(
            conn.execute(
                "SELECT event, count(*) FROM audit_events WHERE event LIKE 'pair.%' GROUP BY event"
            ).fetchall()
        )
        assert conn.execute("SELECT count(*) FROM audit_events WHERE event = 'bulk'").fetchone()
    conn.close()
    assert halves.get("pair.first", 0) == halves.get("pair.second", 0) > 0
    with database.unit_of_work(read_only=True) as uow:
        total = uow.scalar(select(func.count()).where(AuditEvent.event == "pair.first"))
    assert halves["pair.first"] <= (total or 0)
    # The copy is a database the service opens as it is, at head.
    current = run_cli(
        tmp_path / "data", "db", "current", USERSERVICE_DATABASE_URL=f"sqlite:///{copy}"
    )
    head = head_revision()
    assert current.returncode == 0 and current.stdout.strip() == f"current: {head} (head: {head})"


@sqlite_only
def test_n7_an_existing_file_is_never_overwritten(db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "keep.db"
    target.write_bytes(b"precious")
    result = run_cli(tmp_path / "data", "backup", str(target), USERSERVICE_DATABASE_URL=db_url)
    assert_one_line_error(result, str(target), "already exists")
    assert target.read_bytes() == b"precious"


@sqlite_only
def test_n7_an_unwritable_place_is_one_line_and_leaves_nothing(db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "copy.db"
    result = run_cli(tmp_path / "data", "backup", str(target), USERSERVICE_DATABASE_URL=db_url)
    assert_one_line_error(result, str(target), "No such file or directory")
    assert not target.exists()


def test_n7_no_database_yet_is_one_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "backup", str(tmp_path / "copy.db"))
    assert_one_line_error(result, "no database yet at")
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_n7_postgresql_is_pointed_to_pg_dump(db_url: str, tmp_path: Path) -> None:
    result = run_cli(
        tmp_path / "data", "backup", str(tmp_path / "copy.db"), USERSERVICE_DATABASE_URL=db_url
    )
    assert_one_line_error(result, "pg_dump")
    assert not (tmp_path / "copy.db").exists()


ROWS = 2000
DEADLINE = 20.0


def _plain_database(path: Path) -> Path:
    """A SQLite file in rollback-journal mode: a writer's lock keeps its readers
    (here the backup) waiting, which holds a backup in progress for as long as a
    test needs."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        conn.execute("CREATE INDEX t_b ON t (b)")
        conn.executemany("INSERT INTO t (b) VALUES (?)", [(str(n),) for n in range(ROWS)])
        conn.commit()
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.02)


def _complete(copy: Path) -> None:
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROWS,)


def test_n7_the_target_appears_only_once_the_copy_is_complete(tmp_path: Path) -> None:
    source = _plain_database(tmp_path / "source.db")
    place = tmp_path / "backups"
    place.mkdir()
    copy = place / "copy.db"
    failed: list[BaseException] = []

    def run() -> None:
        try:
            backup_sqlite(str(source), copy)
        except BaseException as exc:  # reported to the test's thread
            failed.append(exc)

    backing_up = threading.Thread(target=run)
    with _locked(source):
        backing_up.start()
        _until(lambda: any(place.iterdir()), "the backup began writing")
        # Copying (it waits on the source's lock meanwhile): nothing under the name.
        assert not copy.exists()
        (partial,) = place.iterdir()
        assert stat.S_IMODE(partial.stat().st_mode) == 0o600
    backing_up.join(timeout=DEADLINE)
    assert not backing_up.is_alive() and not failed, failed
    assert sorted(p.name for p in place.iterdir()) == ["copy.db"]
    _complete(copy)


def test_n7_a_killed_backup_leaves_nothing_under_the_name(tmp_path: Path) -> None:
    source = _plain_database(tmp_path / "source.db")
    place = tmp_path / "backups"
    place.mkdir()
    copy = place / "copy.db"
    code = "import sys; from pathlib import Path; from userservice.db.sqlite.backup import "
    code += "backup_sqlite; backup_sqlite(sys.argv[1], Path(sys.argv[2]))"
    with _locked(source):
        child = subprocess.Popen([sys.executable, "-c", code, str(source), str(copy)])
        try:
            _until(lambda: any(place.iterdir()), "the backup began writing")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=DEADLINE)
    assert child.returncode == -signal.SIGKILL
    assert not copy.exists()
    # What the kill left has a name of its own, for the operator to delete.
    assert all(
        p.name.startswith("copy.db.") and p.name.endswith(".partial") for p in place.iterdir()
    )
    backup_sqlite(str(source), copy)  # and is no obstacle to the next backup
    _complete(copy)


def test_n7_a_copy_failing_its_check_leaves_nothing(tmp_path: Path) -> None:
    source = _plain_database(tmp_path / "source.db")
    with closing(sqlite3.connect(source)) as conn:
        # Forget the index but keep its pages: the file reads, its check fails.
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("DELETE FROM sqlite_master WHERE name = 't_b'")
        conn.commit()
    place = tmp_path / "backups"
    place.mkdir()
    with pytest.raises(BackupCheckFailed, match="never used"):
        backup_sqlite(str(source), place / "copy.db")
    assert list(place.iterdir()) == []


def test_n7_a_place_that_disappears_midway_is_a_failure_not_a_success(tmp_path: Path) -> None:
    source = _plain_database(tmp_path / "source.db")
    place = tmp_path / "backups"
    place.mkdir()
    copy = place / "copy.db"
    failed: list[BaseException] = []

    def run() -> None:
        try:
            backup_sqlite(str(source), copy)
        except BaseException as exc:  # reported to the test's thread
            failed.append(exc)

    backing_up = threading.Thread(target=run)
    with _locked(source):
        backing_up.start()
        _until(lambda: any(place.iterdir()), "the backup began writing")
        # The copy may add a side file (its journal) while the tree is removed.
        _until(lambda: shutil.rmtree(place, ignore_errors=True) or not place.exists(), "gone")
    backing_up.join(timeout=DEADLINE)
    assert not backing_up.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], (OSError, sqlite3.Error)), failed
    assert not os.path.lexists(place)


def test_n7_a_target_made_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    """The name is claimed only at the end (a hard link: atomic, never replacing)."""
    place = tmp_path / "backups"
    place.mkdir()
    copy = place / "copy.db"
    failed: list[BaseException] = []
    source = _plain_database(tmp_path / "source.db")

    def run() -> None:
        try:
            backup_sqlite(str(source), copy)
        except BaseException as exc:  # reported to the test's thread
            failed.append(exc)

    backing_up = threading.Thread(target=run)
    with _locked(source):
        backing_up.start()
        _until(lambda: any(place.iterdir()), "the backup began writing")
        copy.write_bytes(b"precious")
    backing_up.join(timeout=DEADLINE)
    assert len(failed) == 1 and isinstance(failed[0], FileExistsError), failed
    assert copy.read_bytes() == b"precious"
    assert sorted(p.name for p in place.iterdir()) == ["copy.db"]
