"""Races in tests: one attempt in many threads released at once, for the
conditional UPDATEs that must let exactly one of them through."""

from __future__ import annotations

import threading
from collections.abc import Callable


def race(count: int, attempt: Callable[[], bool]) -> list[bool]:
    """`attempt` in `count` threads released at once, each in its own unit of work."""
    barrier = threading.Barrier(count)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome = attempt()
        except BaseException as error:  # reported below, not swallowed
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results
