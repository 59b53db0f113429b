"""`userservice backup PATH` (N7): a copy of the SQLite database that is consistent
while the service writes, 0600, never over an existing file; one-line errors; a
PostgreSQL deployment is pointed to pg_dump."""

from __future__ import annotations

import datetime as dt
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.storage import database as database
from userservice.db.backend import Database
from userservice.db.migrate import head_revision
from userservice.db.models import AuditEvent

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
