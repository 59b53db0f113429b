"""A consistent copy of a live SQLite database, through SQLite's online backup API."""

from __future__ import annotations

import errno
import os
import secrets
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
    the copy, which under steady writes might never end.

    It is written to a temporary file beside the target, checked and flushed to
    the disk, and only then linked under the target's name (N7): a backup killed
    or failing midway, or a crash soon after, never leaves an incomplete file
    under the name an operator would restore from."""
    if os.path.lexists(target):  # early, before the copy's work; the link decides
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _copy(source, partial)
        _fsync(partial, os.O_RDONLY)
        # A hard link is atomic and never replaces: a file made under the name
        # meanwhile stays, and this raises FileExistsError.
        os.link(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    # The new name (and the temporary's removal) survive a crash too.
    _fsync(target.parent, os.O_RDONLY | os.O_DIRECTORY)


def _copy(source: str, into: Path) -> None:
    with _closing(sqlite3.connect(source, timeout=5)) as src:
        src.execute("PRAGMA query_only=ON")
        with _closing(sqlite3.connect(into)) as dst:
            src.backup(dst)
            # One self-contained file: no -wal beside the copy to carry along.
            dst.execute("PRAGMA journal_mode=DELETE")
            verdict = dst.execute("PRAGMA integrity_check").fetchall()
            if verdict != [("ok",)]:
                raise BackupCheckFailed(f"the copy fails its integrity check: {verdict[0][0]}")


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _closing:
    """sqlite3.Connection's own context manager commits; it does not close."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()
