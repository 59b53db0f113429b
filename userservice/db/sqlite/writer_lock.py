"""Turn-taking for SQLite writers, across the threads and processes of one host.

SQLite allows one writer at a time; the others wait in its busy handler, which
sleeps and polls (1, 2, 5 ... 100 ms). Under a burst of writes from two worker
processes that sleeping, not the writes, set the pace (measured: refresh rotation
reached ~700/s while one rotation costs 0.45 ms). Here writers queue on a lock of
the process, then on an flock(2) of a file beside the database, which the kernel
hands to the next waiter the moment it is released. A crashed holder's flock is
released by the kernel with its file descriptor.
"""

from __future__ import annotations

import fcntl
import os
import threading


class WriterLock:
    def __init__(self, database_path: str) -> None:
        self._path = database_path + ".writer-lock"
        self._thread_lock = threading.RLock()
        self._depth = 0  # changed only by the thread holding _thread_lock
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        """Wait up to `timeout` for the other threads of this process, then for the
        other processes (their transactions are short; SQLite's busy_timeout still
        bounds anything that does not use this lock)."""
        if not self._thread_lock.acquire(timeout=timeout):
            return False
        if self._depth == 0:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError:
                    self._thread_lock.release()
                    raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def _file(self) -> int | None:
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                # A read-only directory: SQLite's own locking still keeps writes safe.
                return None
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
