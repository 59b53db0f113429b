"""`userservice backup PATH`: a consistent copy of the embedded SQLite database,
made while the service runs. PostgreSQL has its own tools (pg_dump: README)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from userservice.cli import CliError, load_settings, open_database_of


def _cmd_backup(args: argparse.Namespace) -> int:
    from userservice.db.backend import BackupUnsupported
    from userservice.db.sqlite.backup import BackupCheckFailed

    db = open_database_of(load_settings())
    target = Path(args.path)
    try:
        db.backup(target)
    except BackupUnsupported as exc:
        raise CliError(f"backup: {exc}") from None
    except FileExistsError:
        raise CliError(f"{target} already exists: a backup never overwrites a file") from None
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from None
    except (sqlite3.Error, BackupCheckFailed) as exc:
        raise CliError(f"backup failed: {str(exc).splitlines()[0]}") from None
    finally:
        db.dispose()
    print(f"backed up the database to {target}")
    return 0


def register(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="copy the SQLite database to a new file (0600), consistent while the service "
        "runs; for PostgreSQL use pg_dump",
    )
    backup.add_argument("path", help="the new file (an existing one is never overwritten)")
    backup.set_defaults(func=_cmd_backup)
