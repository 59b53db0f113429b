"""The outbox backlog the metrics read (userservice_mail_outbox_*), on SQLite and
PostgreSQL: mails waiting (claimed or not, due or not) and the oldest one's queue
time; sent and refused mails are not waiting."""

from __future__ import annotations

import datetime as dt

from tests.support.event_loop import run
from userservice.db.backend import Database
from userservice.db.outbox_backlog import outbox_backlog
from userservice.records import QueuedMail

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def _queue(database: Database, number: int, at: dt.datetime) -> None:
    mail = QueuedMail(
        message_id=f"<{number}@acme.test>",
        recipient=f"user{number}@example.com",
        kind="notice",
        content=f"Subject: {number}\r\n\r\nbody\r\n",
        user_id=None,
        created_at=at,
    )
    with database.unit_of_work() as uow:
        database.outbox.add(uow, mail)


def test_an_empty_outbox_has_no_backlog(database: Database) -> None:
    assert outbox_backlog(database) == (0, None)


def test_the_backlog_counts_waiting_mails_and_dates_the_oldest(database: Database) -> None:
    oldest = NOW - dt.timedelta(minutes=30)
    for number, at in enumerate((NOW, oldest, NOW - dt.timedelta(minutes=5), NOW), start=1):
        _queue(database, number, at)
    assert outbox_backlog(database) == (4, oldest)

    async def settle() -> None:
        lease = NOW + dt.timedelta(minutes=10)
        claimed = await database.outbox.claim(NOW, lease, 3)  # ids 1, 2, 3
        await database.outbox.delivered(claimed[1], NOW)  # the oldest: sent
        await database.outbox.failed(claimed[0], NOW, "550 no such user")  # refused for good

    run(database, settle)
    # Mail 3 is claimed but not sent: still waiting, and now the oldest.
    waiting, found = outbox_backlog(database)
    assert (waiting, found) == (2, NOW - dt.timedelta(minutes=5))
    assert found is not None and found.tzinfo is not None
