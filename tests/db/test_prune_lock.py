"""One pruning pass at a time (N6): the backends' prune turn is the deployment's
one, on SQLite (flock beside the file) and PostgreSQL (advisory lock held by a
transaction); whoever asks while it is held is told at once; a holder that dies
gives it back."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.engine import build_engine, open_database
from userservice.db.models import RevokedAccessToken
from userservice.services.retention import prune_expired
from userservice.settings import Settings

HOLDER = """
import sys, time
from userservice.db.engine import build_engine, open_database
db = open_database(build_engine(sys.argv[1]))
with db.prune_turn() as ours:
    print("held" if ours else "refused", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def other(db_url: str) -> Iterator[Database]:
    """A second process's view of the same database: its own engine and backend."""
    db = open_database(build_engine(db_url))
    yield db
    db.dispose()


def test_n6_the_turn_is_one_at_a_time(database: Database, other: Database) -> None:
    with database.prune_turn() as first:
        assert first
        with other.prune_turn() as second:
            assert not second
        with database.prune_turn() as again:  # one backend, two passes: refused too
            assert not again
    with other.prune_turn() as after:
        assert after


def test_n6_a_pass_while_another_holds_the_turn_deletes_nothing(
    database: Database, other: Database, db_url: str, tmp_path: Path
) -> None:
    add_user(database)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with database.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="old", expires_at=past))
    settings = Settings(_env_file=None, database_url=db_url, data_dir=tmp_path)  # type: ignore[call-arg]
    with other.prune_turn():
        assert prune_expired(database, settings) is None
    counts = prune_expired(database, settings)
    assert counts is not None and counts["revoked_access_tokens"] == 1


def test_n6_a_holder_that_dies_gives_the_turn_back(database: Database, db_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with database.prune_turn() as ours:
            assert not ours
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            with database.prune_turn() as ours:
                if ours:
                    break
            assert time.monotonic() < deadline, "the dead holder's turn was not released"
            time.sleep(0.05)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_n6_the_command_says_so_and_exits_0_while_another_pass_runs(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    add_user(database)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with database.unit_of_work() as uow:
        uow.add(RevokedAccessToken(jti="old", expires_at=past))
    with database.prune_turn():
        result = run_cli(tmp_path / "data", "prune", USERSERVICE_DATABASE_URL=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "another process is pruning this database now: nothing done"
    result = run_cli(tmp_path / "data", "prune", USERSERVICE_DATABASE_URL=db_url)
    assert result.returncode == 0 and "revoked_access_tokens: 1 deleted" in result.stdout
