"""`userservice backup PATH`: a consistent copy of the embedded SQLite database,
made while the service runs. PostgreSQL has its own tools (pg_dump: README)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from userservice.cli import CliError, _settings


def _cmd_backup(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from userservice.db.sqlite.backup import BackupCheckFailed, backup_sqlite

    settings = _settings()
    try:
        url = make_url(settings.resolved_database_url())
    except ArgumentError as exc:
        raise CliError(f"bad database URL: {exc}") from None
    if url.get_backend_name() != "sqlite":
        raise CliError(
            "backup copies the embedded SQLite database; for PostgreSQL use pg_dump "
            "(see the README's backups section)"
        )
    source = url.database
    if not source or source == ":memory:" or not Path(source).is_file():
        raise CliError(f"no database file at {source or '(memory)'}")
    target = Path(args.path)
    try:
        backup_sqlite(source, target)
    except FileExistsError:
        raise CliError(f"{target} already exists: a backup never overwrites a file") from None
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    except (sqlite3.Error, BackupCheckFailed) as exc:
        raise CliError(f"backup failed: {str(exc).splitlines()[0]}") from None
    print(f"backed up {source} to {target}")
    return 0


def register(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="copy the SQLite database to a new file (0600), consistent while the service "
        "runs; for PostgreSQL use pg_dump",
    )
    backup.add_argument("path", help="the new file (an existing one is never overwritten)")
    backup.set_defaults(func=_cmd_backup)
