"""A consistent copy of a live SQLite database, through SQLite's online backup API."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class BackupCheckFailed(RuntimeError):
    pass


def backup_sqlite(source: str, target: Path) -> None:
    """Copy the database at `source` to `target`, a new file (FileExistsError if it
    exists: a backup never overwrites), created 0600 like the database (S11).

    The copy is made in one step: it reads inside one read transaction, so it is a
    snapshot of one moment, and in WAL mode the service's writers carry on
    meanwhile. Copied in several steps, a write between two steps would restart
    the copy, which under steady writes might never end."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with _closing(sqlite3.connect(source, timeout=5)) as src:
            src.execute("PRAGMA query_only=ON")
            with _closing(sqlite3.connect(target)) as dst:
                src.backup(dst)
                # One self-contained file: no -wal beside the copy to carry along.
                dst.execute("PRAGMA journal_mode=DELETE")
                verdict = dst.execute("PRAGMA integrity_check").fetchall()
                if verdict != [("ok",)]:
                    raise BackupCheckFailed(f"the copy fails its integrity check: {verdict[0][0]}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class _closing:
    """sqlite3.Connection's own context manager commits; it does not close."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()
