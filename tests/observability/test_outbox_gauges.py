"""The outbox gauges a scrape reads: depth, and the oldest waiting mail's age (0
when none); a database that does not answer leaves them out of that scrape
instead of failing it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.support.metrics import samples
from userservice.observability.multiprocess import Backlog, OutboxGauges, scrape_registry


def _read(gauges: OutboxGauges, tmp_path_str: str) -> str:
    return generate_latest(scrape_registry([gauges], tmp_path_str)).decode()


def test_the_age_is_that_of_the_oldest_waiting_mail(tmp_path: Path) -> None:
    queued = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)
    text = _read(OutboxGauges(lambda: (3, queued)), str(tmp_path))
    found = samples(text)
    assert found[("userservice_mail_outbox_messages", frozenset())] == 3
    age = found[("userservice_mail_outbox_oldest_age_seconds", frozenset())]
    assert 90 <= age < 100


def test_no_waiting_mail_is_age_zero(tmp_path: Path) -> None:
    text = _read(OutboxGauges(lambda: (0, None)), str(tmp_path))
    assert samples(text)[("userservice_mail_outbox_oldest_age_seconds", frozenset())] == 0


def test_a_failing_read_leaves_the_gauges_out_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def down() -> Backlog:
        raise ConnectionError("database down")

    text = _read(OutboxGauges(down), str(tmp_path))
    assert "userservice_mail_outbox" not in text
    assert "cannot read the mail outbox" in caplog.text
