"""The outbox port on SQLite and PostgreSQL: a mail is added with its unit of work or
not at all, a claim leases pending rows in id order to one sender, and the outcome
of an attempt is recorded only while the attempt is the row's latest."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
from sqlalchemy import select, update

from tests.support.event_loop import run
from tests.support.mail import rows
from userservice.db.backend import Database
from userservice.db.models import OutboxMail
from userservice.records import ClaimedMail, QueuedMail

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LEASE = NOW + dt.timedelta(minutes=10)


def queued(number: int, at: dt.datetime = NOW) -> QueuedMail:
    return QueuedMail(
        message_id=f"<{number}@acme.test>",
        recipient=f"user{number}@example.com",
        kind="notice",
        content=f"Subject: {number}\r\n\r\nbody {number}\r\n",
        user_id=None,
        created_at=at,
    )


def add(database: Database, *numbers: int, at: dt.datetime = NOW) -> None:
    for number in numbers:
        with database.unit_of_work() as uow:
            database.outbox.add(uow, queued(number, at))


def claim(database: Database, now: dt.datetime = NOW, limit: int = 10) -> list[ClaimedMail]:
    return run(database, lambda: database.outbox.claim(now, now + dt.timedelta(minutes=10), limit))


def test_a_mail_is_added_with_its_unit_of_work_or_not_at_all(database: Database) -> None:
    """L10: the change that causes a mail and the mail commit together."""
    woken: list[str] = []
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        database.outbox.add(uow, queued(1), after_commit=lambda: woken.append("rolled back"))
        raise RuntimeError("the change failed")
    assert rows(database) == []
    assert woken == []

    with database.unit_of_work() as uow:
        database.outbox.add(uow, queued(2), after_commit=lambda: woken.append("committed"))
        assert woken == []  # not before the commit: the sender would find nothing
    assert woken == ["committed"]
    [row] = rows(database)
    assert (row.message_id, row.recipient, row.kind) == (
        "<2@acme.test>",
        "user2@example.com",
        "notice",
    )
    assert row.content == queued(2).content
    assert (row.attempts, row.next_attempt_at, row.claimed_until, row.sent_at) == (
        0,
        NOW,
        None,
        None,
    )


def test_a_claim_leases_pending_rows_in_id_order(database: Database) -> None:
    add(database, 1, 2, 3)
    first = claim(database, limit=2)
    assert [(m.message_id, m.attempt) for m in first] == [
        ("<1@acme.test>", 1),
        ("<2@acme.test>", 1),
    ]
    assert first[0].content == queued(1).content
    assert [m.message_id for m in claim(database)] == ["<3@acme.test>"]
    # Every row is leased until LEASE: a second sender gets nothing.
    assert claim(database, NOW + dt.timedelta(minutes=9)) == []
    assert [row.claimed_until for row in rows(database)] == [LEASE] * 3
    # A sender that died holding them loses them when the lease runs out (L11).
    again = claim(database, LEASE + dt.timedelta(seconds=1))
    assert [(m.message_id, m.attempt) for m in again] == [
        ("<1@acme.test>", 2),
        ("<2@acme.test>", 2),
        ("<3@acme.test>", 2),
    ]


def test_a_mail_not_yet_due_is_not_claimed(database: Database) -> None:
    add(database, 1, at=NOW + dt.timedelta(seconds=30))
    assert claim(database) == []
    assert len(claim(database, NOW + dt.timedelta(seconds=30))) == 1


def test_outcomes_are_recorded(database: Database) -> None:
    """L12: sent_at, failed_at, last_error and attempts tell what became of a mail."""
    add(database, 1, 2, 3)
    sent, retried, refused = claim(database)
    later = NOW + dt.timedelta(seconds=5)
    retry_at = NOW + dt.timedelta(minutes=1)

    async def settle() -> None:
        await database.outbox.delivered(sent, later)
        await database.outbox.retry(retried, retry_at, "421 try later")
        await database.outbox.failed(refused, later, "550 no such user " + "x" * 900)

    run(database, settle)
    one, two, three = rows(database)
    assert (one.sent_at, one.claimed_until, one.attempts) == (later, None, 1)
    assert (two.sent_at, two.failed_at, two.claimed_until) == (None, None, None)
    assert (two.next_attempt_at, two.last_error, two.attempts) == (retry_at, "421 try later", 1)
    assert (three.failed_at, three.claimed_until, three.sent_at) == (later, None, None)
    assert three.last_error is not None and three.last_error.startswith("550 no such user")
    assert len(three.last_error) == 500
    # Sent and failed rows are never claimed again; the retry only once it is due.
    assert claim(database, LEASE + dt.timedelta(hours=1), limit=10) == [
        ClaimedMail(retried.id, retried.message_id, retried.recipient, "notice", retried.content, 2)
    ]


def test_a_late_outcome_does_not_touch_a_row_another_sender_took_over(database: Database) -> None:
    """A sender whose lease ran out must not reschedule or fail the row that a second
    sender now holds; its delivery is still recorded (the mail did go out)."""
    add(database, 1, 2)
    slow_one, slow_two = claim(database)
    taken_over = claim(database, LEASE + dt.timedelta(seconds=1))
    assert [m.attempt for m in taken_over] == [2, 2]

    async def late() -> None:
        await database.outbox.retry(slow_one, NOW + dt.timedelta(hours=1), "421 late")
        await database.outbox.failed(slow_two, NOW, "550 late")
        await database.outbox.release(slow_one)

    run(database, late)
    one, two = rows(database)
    for row in (one, two):
        assert (row.attempts, row.failed_at, row.last_error) == (2, None, None)
        assert row.claimed_until == LEASE + dt.timedelta(seconds=1) + dt.timedelta(minutes=10)
    run(database, lambda: database.outbox.delivered(slow_one, NOW))
    assert rows(database)[0].sent_at == NOW


def test_a_released_mail_is_given_back_untried(database: Database) -> None:
    add(database, 1)
    [held] = claim(database)
    run(database, lambda: database.outbox.release(held))
    [row] = rows(database)
    assert (row.attempts, row.claimed_until) == (0, None)
    assert [m.attempt for m in claim(database)] == [1]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_claim_skips_rows_another_sender_is_claiming(database: Database) -> None:
    """L11: on PostgreSQL a claim passes over rows locked by a claim in flight (SKIP
    LOCKED) instead of waiting for it, and never takes them."""
    add(database, 1, 2, 3)
    locked = threading.Event()
    done = threading.Event()

    def hold_first_row() -> None:
        with database.unit_of_work() as uow:
            uow.execute(
                select(OutboxMail.id).where(OutboxMail.id == 1).with_for_update()  # type: ignore[arg-type]
            )
            locked.set()
            done.wait(10)

    holder = threading.Thread(target=hold_first_row)
    holder.start()
    try:
        assert locked.wait(10)

        async def claim_in_time() -> list[ClaimedMail]:
            return await asyncio.wait_for(database.outbox.claim(NOW, LEASE, 10), 5)

        got = run(database, claim_in_time)
    finally:
        done.set()
        holder.join()
    assert [m.message_id for m in got] == ["<2@acme.test>", "<3@acme.test>"]
    assert [m.message_id for m in claim(database)] == ["<1@acme.test>"]


def test_a_settled_row_keeps_no_content(database: Database) -> None:
    """L12: a mailed link is a credential; once a mail is sent or refused for good,
    its row keeps who, what kind and how it went, never the message (a backup or a
    replica would otherwise hold every recent reset link)."""
    add(database, 1, 2, 3)
    linked = "Subject: x\r\n\r\nhttps://acme.test/reset-password?token=3Dt0ken token=t0ken\r\n"
    with database.unit_of_work() as uow:
        uow.execute(update(OutboxMail).values(content=linked))
    sent, refused, retried = claim(database)

    async def settle() -> None:
        await database.outbox.delivered(sent, NOW)
        await database.outbox.failed(refused, NOW, "550 no such user")
        await database.outbox.retry(retried, NOW, "421 later")

    run(database, settle)
    one, two, three = rows(database)
    for row in (one, two):
        assert "token=" not in row.content and row.content == ""
    assert (one.message_id, one.kind, one.recipient) == (
        "<1@acme.test>",
        "notice",
        queued(1).recipient,
    )
    assert (two.message_id, two.last_error) == ("<2@acme.test>", "550 no such user")
    assert one.sent_at == two.failed_at == NOW
    assert three.content == linked  # still to be sent


def test_a_lease_is_renewed_only_while_the_claim_still_holds_it(database: Database) -> None:
    """L11: before each mail of a batch a sender renews that mail's lease; a claim
    whose lease ran out, that another sender took over, or that is settled
    renews nothing, so its sender skips the mail rather than send it twice."""
    add(database, 1, 2, 3)
    held, expired, settled = claim(database)
    later = NOW + dt.timedelta(minutes=5)
    longer = later + dt.timedelta(minutes=10)

    async def renew(mail: ClaimedMail, now: dt.datetime) -> bool:
        return await database.outbox.renew(mail, now, now + dt.timedelta(minutes=10))

    assert run(database, lambda: renew(held, later)) is True
    assert rows(database)[0].claimed_until == longer
    # Past its lease: no longer the sender's, even before another claims it.
    assert run(database, lambda: renew(expired, LEASE + dt.timedelta(seconds=1))) is False
    run(database, lambda: database.outbox.delivered(settled, later))
    assert run(database, lambda: renew(settled, later)) is False
    [taken] = claim(database, LEASE + dt.timedelta(seconds=1))
    assert taken.id == expired.id
    assert run(database, lambda: renew(expired, LEASE + dt.timedelta(seconds=2))) is False
    assert run(database, lambda: renew(taken, LEASE + dt.timedelta(seconds=2))) is True
