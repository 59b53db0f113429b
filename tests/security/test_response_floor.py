"""L2: the response floor (security/response_floor.py): an answer, or an error, no
earlier than the floor; the wait holds no thread; work over the floor is logged."""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from userservice.security import response_floor
from userservice.security.response_floor import FLOOR_SECONDS, JITTER_SECONDS, at_floor


def timed(work: object) -> float:
    start = time.monotonic()
    anyio.run(lambda: at_floor(work, what="test"))  # type: ignore[arg-type]
    return time.monotonic() - start


def test_a_quick_answer_waits_for_the_floor() -> None:
    elapsed = timed(lambda: 42)
    assert FLOOR_SECONDS <= elapsed < FLOOR_SECONDS + JITTER_SECONDS + 0.2


def test_an_error_waits_for_the_floor_too() -> None:
    def refused() -> None:
        raise ValueError("refused")

    start = time.monotonic()
    with pytest.raises(ValueError, match="refused"):
        anyio.run(lambda: at_floor(refused, what="test"))
    assert time.monotonic() - start >= FLOOR_SECONDS


def test_the_wait_holds_no_thread() -> None:
    # Eighty waits at once overlap on the event loop; held in worker threads (anyio
    # lends forty) they would take two floors.
    async def many() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(80):
                group.start_soon(lambda: at_floor(lambda: None, what="test"))

    start = time.monotonic()
    anyio.run(many)
    assert time.monotonic() - start < 2 * FLOOR_SECONDS


def test_work_over_the_floor_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(response_floor, "FLOOR_SECONDS", 0.0)
    monkeypatch.setattr(response_floor, "JITTER_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="userservice.security"):
        timed(lambda: time.sleep(0.02))
    (record,) = caplog.records
    assert record.getMessage().startswith("test took ")
    assert "raise FLOOR_SECONDS" in record.getMessage()
    caplog.clear()
    monkeypatch.setattr(response_floor, "FLOOR_SECONDS", 0.05)
    with caplog.at_level(logging.WARNING, logger="userservice.security"):
        anyio.run(lambda: at_floor(lambda: None, what="test"))
    assert not caplog.records
