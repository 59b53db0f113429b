"""`userservice prune` as a real subprocess, on SQLite and PostgreSQL: it deletes
what is past its purpose, prints how many rows of each kind, and refuses a schema
that is not at head."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.retention import KEYS, seed, stored_keys
from tests.support.storage import database as database
from userservice.db.backend import Database
from userservice.db.migrate import head_revision


def test_prune_deletes_and_counts(database: Database, db_url: str, tmp_path: Path) -> None:
    keys = seed(database, dt.datetime.now(dt.UTC), retention_days=400)

    result = run_cli(tmp_path / "data", "prune", USERSERVICE_DATABASE_URL=db_url)

    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert printed == {kind: f"{len(gone)} deleted" for kind, (gone, _) in keys.items()}
    for kind, (gone, kept) in keys.items():
        assert not gone & stored_keys(database, kind), kind
        assert kept <= stored_keys(database, kind), kind
    assert set(printed) == set(KEYS)


def test_prune_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "prune")
    assert_one_line_error(result, f"not {head_revision()}", "userservice db upgrade")
