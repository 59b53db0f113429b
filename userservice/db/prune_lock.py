"""One pruning pass at a time across every process and replica of a deployment:
the backends' `prune_turn()` (db/ports.py PruneTurn).

PostgreSQL: a transaction-scoped advisory lock, taken without waiting on a
connection of its own and held by its open transaction for the whole pass. It
ends with that transaction, so a pooled connection never keeps it, and a process
that dies mid-pass loses its connection and with it the lock. The transaction
only ran a SELECT at READ COMMITTED: it holds no snapshot, so it does not keep
VACUUM from the rows the pass deletes.

SQLite: a non-blocking flock(2) on a file beside the database, released by the
kernel with the file descriptor if the holder dies.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

# The advisory lock's key: the ASCII of "usrprune" as a (positive) bigint.
PRUNE_LOCK_KEY = int.from_bytes(b"usrprune", "big")
SQLITE_SUFFIX = ".prune-lock"


@contextmanager
def postgres_prune_turn(engine: Engine) -> Iterator[bool]:
    with engine.connect() as conn, conn.begin():
        taken = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PRUNE_LOCK_KEY}
        ).scalar_one()
        yield bool(taken)


@contextmanager
def sqlite_prune_turn(database_path: str | None) -> Iterator[bool]:
    if database_path is None:  # in memory: no other process can see the database
        yield True
        return
    fd = os.open(database_path + SQLITE_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken = True
        except BlockingIOError:
            taken = False
        yield taken
    finally:
        os.close(fd)  # releases the flock
