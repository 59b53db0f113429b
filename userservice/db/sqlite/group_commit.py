"""Group commit for SQLite writes on hot paths (refresh rotation, the login's insert).

SQLite has one writer at a time, shared by the worker processes through the
writer lock (writer_lock.py). Run one by one from the threadpool, every
rotation paid for a thread hand-off, the lock's hand-over between processes, a
BEGIN IMMEDIATE and a COMMIT: in a py-spy profile, waiting for the lock and for
threads took 40 % of a worker's samples while the SQL itself was ~0.45 ms.

Here one writer thread per process takes every unit of work queued meanwhile and
runs them in one transaction, each inside its own SAVEPOINT: a unit that raises
is rolled back to its savepoint alone and its caller gets the exception, the
others commit together. The lock is handed over once per batch, not per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from userservice.db.sqlite.writer_lock import WriterLock

T = TypeVar("T")
MAX_BATCH = 64

Work = Callable[[Connection], Any]
_Item = tuple[Work, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_Outcome = tuple[Any, BaseException | None]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller went away (cancelled); the write stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class GroupCommitter:
    def __init__(
        self,
        engine: Engine,
        lock: WriterLock | None,
        begin_options: dict[str, Any],
        wait_seconds: float,
    ) -> None:
        self._engine = engine
        self._lock = lock
        self._begin_options = begin_options
        self._wait_seconds = wait_seconds
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in the next batch's transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._started()
        self._queue.put((work, loop, future))
        return await future

    def _started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name="sqlite-group-commit", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        outcomes: list[_Outcome] = []
        try:
            self._run_locked(batch, outcomes)
        except Exception as exc:  # the batch's transaction failed: nobody's write stands
            failure: Exception = exc
            if isinstance(exc, sqlite3.Error):  # answered like any database error (503)
                failure = DBAPIError.instance("SAVEPOINT", None, exc, sqlite3.Error)
            outcomes = [(None, failure)] * len(batch)
        for (_work, loop, future), (value, error) in zip(batch, outcomes, strict=True):
            # RuntimeError: that event loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, value, error)

    def _run_locked(self, batch: list[_Item], outcomes: list[_Outcome]) -> None:
        lock = self._lock
        if lock is not None and not lock.acquire(timeout=self._wait_seconds):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        try:
            connection = self._engine.connect().execution_options(**self._begin_options)
            with connection as conn, conn.begin():
                # Savepoints straight on the sqlite3 connection: SQLAlchemy's
                # begin_nested() cost more than the statements (profile).
                raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
                for work, _loop, _future in batch:
                    raw.execute("SAVEPOINT unit")
                    try:
                        value = work(conn)
                    except Exception as exc:
                        raw.execute("ROLLBACK TO unit")
                        raw.execute("RELEASE unit")
                        outcomes.append((None, exc))
                    else:
                        raw.execute("RELEASE unit")
                        outcomes.append((value, None))
        finally:
            if lock is not None:
                lock.release()
