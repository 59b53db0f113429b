"""The sender over a real database and a real SMTP server on loopback: a mail goes
out only once its unit of work commits, failed attempts are retried with backoff
until the server is back, a refusal is final, every outcome is recorded, two
senders never send one mail twice, and no log but the console's shows a mail."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from tests.support.accounts import ISSUER
from tests.support.mail import notice, outbox_for, queue_committed, rows
from tests.support.server import free_port
from tests.support.smtp import WAIT_SECONDS, Inbox, smtp_server
from userservice.db.backend import Database
from userservice.db.engine import build_engine, open_database
from userservice.records import ClaimedMail
from userservice.security.smtp_url import smtp_server as parse_smtp_url
from userservice.services.at_rest import AtRest
from userservice.services.mail.outbox import MailOutbox
from userservice.services.mail.sender import SenderTiming, backoff
from userservice.services.mail.transport import (
    ConsoleTransport,
    SmtpTransport,
    Transport,
)

T = TypeVar("T")
SECRET = "s3cret-t0ken-never-logged"
LINK = f"{ISSUER}/verify-email?token={SECRET}"


def smtp_to(port: int) -> SmtpTransport:
    return SmtpTransport(parse_smtp_url(f"smtp://127.0.0.1:{port}?tls=none"), "no-reply@acme.test")


def running(outboxes: list[MailOutbox], body: Callable[[], Awaitable[T]]) -> T:
    """Run `body` while the outboxes' senders run, then stop them."""

    async def main() -> T:
        for outbox in outboxes:
            await outbox.sender.start()
        try:
            return await body()
        finally:
            for outbox in outboxes:
                await outbox.sender.stop()
            for outbox in outboxes:
                await outbox.db.close_async()  # type: ignore[attr-defined]

    return asyncio.run(main())


async def until(check: Callable[[], bool]) -> None:
    """Poll a condition on the database or the inbox (each a blocking read)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if await asyncio.to_thread(check):
                return
            await asyncio.sleep(0.02)


def test_mail_goes_out_only_when_its_unit_of_work_commits(database: Database) -> None:
    """L10: rolled back, nothing is written or sent; committed, the sender is woken
    and delivers it at once (it would otherwise poll only every minute here)."""
    with smtp_server() as server:
        outbox = outbox_for(database, smtp_to(server.port), SenderTiming(poll_seconds=60))

        async def body() -> str:
            def roll_back() -> None:
                with database.unit_of_work() as uow:
                    outbox.queue(uow, notice(link=LINK))
                    raise RuntimeError("the change failed")

            with pytest.raises(RuntimeError):
                await asyncio.to_thread(roll_back)
            [message_id] = await asyncio.to_thread(queue_committed, outbox, notice(link=LINK))
            await asyncio.wait_for(asyncio.to_thread(server.inbox.wait_for, 1), 5)
            return message_id

        message_id = running([outbox], body)
        [received] = server.inbox.received
    [row] = rows(database)
    assert row.message_id == message_id == received.message["Message-ID"]
    assert row.sent_at is not None and (row.attempts, row.last_error) == (1, None)
    assert row.content == ""  # L12: a sent mail's link is not kept
    assert received.recipients == ["bob@example.com"]
    assert received.link("/verify-email") == LINK
    assert LINK in received.html
    assert received.message["Auto-Submitted"] == "auto-generated"


def test_a_mail_is_retried_with_backoff_until_the_server_is_back(database: Database) -> None:
    """L12: a refused connection is an attempt that failed, recorded and retried."""
    port = free_port()
    outbox = outbox_for(database, smtp_to(port))
    inbox = Inbox()

    async def body() -> None:
        await asyncio.to_thread(queue_committed, outbox, notice(link=LINK))
        await until(lambda: rows(database)[0].attempts >= 3)
        row = rows(database)[0]
        assert (row.sent_at, row.failed_at) == (None, None)
        assert row.last_error == "ConnectionRefusedError"
        with smtp_server(inbox=inbox, port=port):
            await until(lambda: rows(database)[0].sent_at is not None)

    running([outbox], body)
    [row] = rows(database)
    assert row.attempts >= 3 and row.failed_at is None
    assert row.last_error == "ConnectionRefusedError"  # the last failure is kept
    assert [r.message["Message-ID"] for r in inbox.received] == [row.message_id]


def test_backoff_doubles_is_capped_and_spread() -> None:
    timing = SenderTiming(first_retry_seconds=30, max_retry_seconds=3600)
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (30, 3600)]:
        delays = [backoff(timing, attempt) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 40  # spread, so that workers do not retry in step


def test_a_5xx_refusal_fails_for_good(database: Database) -> None:
    """L12: a permanent refusal is recorded and never tried again."""
    with smtp_server(inbox=Inbox(refuse={"bob@example.com"})) as server:
        outbox = outbox_for(database, smtp_to(server.port))

        async def body() -> None:
            await asyncio.to_thread(queue_committed, outbox, notice(), notice("ann@example.com"))
            await until(lambda: all(r.failed_at or r.sent_at for r in rows(database)))
            await asyncio.sleep(0.3)  # several polls: nothing is tried again

        running([outbox], body)
        assert [r.recipients for r in server.inbox.received] == [["ann@example.com"]]
    refused, sent = rows(database)
    assert refused.failed_at is not None and refused.sent_at is None
    assert (refused.attempts, refused.last_error) == (1, "550 5.1.1 mailbox unavailable")
    assert sent.sent_at is not None and sent.failed_at is None


def test_a_mail_is_given_up_after_its_last_attempt(database: Database) -> None:
    outbox = outbox_for(
        database,
        smtp_to(free_port()),
        SenderTiming(
            poll_seconds=0.05, first_retry_seconds=0.01, max_retry_seconds=0.01, max_attempts=3
        ),
    )

    async def body() -> None:
        await asyncio.to_thread(queue_committed, outbox, notice())
        await until(lambda: rows(database)[0].failed_at is not None)

    running([outbox], body)
    [row] = rows(database)
    assert row.attempts == 3 and row.sent_at is None
    assert row.last_error == "gave up after 3 attempts: ConnectionRefusedError"


class StopsAfterFirst:
    """A transport that asks its sender to stop once it has sent one mail, as a
    shutdown arriving mid-batch would."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.outbox: MailOutbox | None = None

    async def send(self, mail: ClaimedMail) -> None:
        await self.inner.send(mail)
        assert self.outbox is not None
        self.outbox.sender.request_stop()


def test_a_stopping_sender_gives_back_the_rest_of_its_batch(database: Database) -> None:
    """L19: a shutdown mid-batch finishes the mail in hand and frees the others at
    once, rather than leaving them to wait for the lease to run out."""
    with smtp_server() as server:
        transport = StopsAfterFirst(smtp_to(server.port))
        outbox = transport.outbox = outbox_for(database, transport, SenderTiming(poll_seconds=60))
        queue_committed(outbox, notice(), notice(), notice())
        running([outbox], lambda: until(lambda: rows(database)[0].sent_at is not None))
        first, *rest = rows(database)
        assert first.attempts == 1
        # Untried: back to pending, no attempt counted, free for the next sender.
        assert [(r.attempts, r.claimed_until, r.sent_at) for r in rest] == [(0, None, None)] * 2
        again = outbox_for(database, smtp_to(server.port))
        running([again], lambda: until(lambda: all(r.sent_at for r in rows(database))))
        assert len(server.inbox.received) == 3


@pytest.fixture
def second_database(db_url: str) -> Iterator[Database]:
    """The same database opened again, as another worker or replica would."""
    db = open_database(build_engine(db_url))
    yield db
    db.dispose()


def test_two_senders_send_each_mail_exactly_once(
    database: Database, second_database: Database
) -> None:
    """L11: two senders on one database (SKIP LOCKED on PostgreSQL, turns taken on
    SQLite), claiming small batches at once: every mail arrives, none twice."""
    count = 40
    timing = SenderTiming(poll_seconds=0.01, batch=3)
    with smtp_server() as server:
        one = outbox_for(database, smtp_to(server.port), timing)
        two = outbox_for(second_database, smtp_to(server.port), timing)
        ids = queue_committed(one, *[notice(f"user{n}@example.com") for n in range(count)])

        async def body() -> None:
            await asyncio.to_thread(server.inbox.wait_for, count)
            await asyncio.sleep(0.3)  # a second copy would arrive meanwhile

        running([one, two], body)
        received = [r.message["Message-ID"] for r in server.inbox.received]
    assert sorted(received) == sorted(ids)
    assert [(r.attempts, r.sent_at is not None) for r in rows(database)] == [(1, True)] * count


def test_a_server_slower_than_the_lease_gets_each_mail_once(
    database: Database, second_database: Database
) -> None:
    """L11: each mail of a batch takes longer than the lease (a slow server), so the
    rest of the batch passes to the other sender while the first is still busy:
    before each mail a sender renews its lease, skipping a mail it no longer
    holds, and keeps the lease of the mail in hand alive while it is sent."""
    count = 4
    timing = SenderTiming(poll_seconds=0.02, batch=count, lease_seconds=0.6)
    with smtp_server(inbox=Inbox(delay=1.0)) as server:
        one = outbox_for(database, smtp_to(server.port), timing)
        two = outbox_for(second_database, smtp_to(server.port), timing)
        ids = queue_committed(one, *[notice(f"user{n}@example.com") for n in range(count)])

        async def body() -> None:
            await asyncio.to_thread(server.inbox.wait_for, count, 30)
            await until(lambda: all(r.sent_at for r in rows(database)))
            await asyncio.sleep(1.5)  # a second copy would arrive meanwhile

        running([one, two], body)
        received = [r.message["Message-ID"] for r in server.inbox.received]
    assert sorted(received) == sorted(ids)


def test_a_pending_mail_is_encrypted_and_a_sent_one_erased(database: Database) -> None:
    """L12: with a key encryption secret the outbox holds a pending mail sealed to
    its row, so a copy of the database shows no link; the sender opens it to send,
    and a sent mail's content is erased."""
    at_rest = AtRest("an at-rest secret of the operator")
    with smtp_server() as server:
        outbox = outbox_for(database, smtp_to(server.port), at_rest=at_rest)
        queue_committed(outbox, notice(link=LINK))
        [pending] = rows(database)
        assert pending.content.startswith("enc:v1:") and SECRET not in pending.content
        running([outbox], lambda: until(lambda: rows(database)[0].sent_at is not None))
        [received] = server.inbox.received
    assert received.link("/verify-email") == LINK
    assert received.message["Message-ID"] == pending.message_id
    assert rows(database)[0].content == ""


def test_a_mail_sealed_under_another_secret_is_not_sent(database: Database) -> None:
    """L12: a row that does not open with the configured secret is a failed attempt
    that names the setting, never a mail sent with ciphertext."""
    with smtp_server() as server:
        sealing = outbox_for(database, smtp_to(server.port), at_rest=AtRest("the old secret"))
        queue_committed(sealing, notice(link=LINK))
        other = outbox_for(database, smtp_to(server.port), at_rest=AtRest("another secret"))
        running([other], lambda: until(lambda: rows(database)[0].attempts >= 2))
        assert server.inbox.received == []
    [row] = rows(database)
    assert row.sent_at is None and row.failed_at is None
    assert row.last_error is not None and "USERSERVICE_KEY_ENCRYPTION_SECRET" in row.last_error


def test_logs_show_kind_id_and_outcome_but_no_mail(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """L16: a mail's links are secrets; only the console transport's own output,
    when it is the configured transport, shows a mail."""
    with (
        caplog.at_level(logging.DEBUG),
        smtp_server(inbox=Inbox(refuse={"ann@example.com"})) as server,
    ):
        down = outbox_for(database, smtp_to(free_port()))
        up = outbox_for(database, smtp_to(server.port))
        queue_committed(up, notice(link=LINK), notice("ann@example.com", link=LINK))
        running([down], lambda: until(lambda: rows(database)[0].attempts >= 2))
        running([up], lambda: until(lambda: all(r.sent_at or r.failed_at for r in rows(database))))
        console = outbox_for(database, ConsoleTransport())
        queue_committed(console, notice("cy@example.com", link=LINK))
        running([console], lambda: until(lambda: rows(database)[2].sent_at is not None))
    ours = [r for r in caplog.records if r.name != "mail.log"]  # aiosmtpd's own log
    shown = [r for r in ours if r.name == "userservice.mail"]
    assert len(shown) == 1 and SECRET in shown[0].getMessage()
    others = "\n".join(r.getMessage() for r in ours if r.name != "userservice.mail")
    assert SECRET not in others
    assert "@example.com" not in others
    outcomes = re.findall(
        r"mail kind=notice id=\d+ message_id=<\S+> attempt=\d outcome=(\w+)", others
    )
    assert {"retry", "sent", "failed"} <= set(outcomes)
    assert "error=ConnectionRefusedError" in others and "error=550" in others
    assert "mailbox unavailable" not in others  # a reply's text may quote the address


def test_a_lifespan_on_a_second_event_loop_leaves_the_running_sender_alone(
    database: Database,
) -> None:
    """An ASGI host may run the app's lifespan twice, in two event loops (test
    harnesses do): the second start and stop neither fail nor stop the sender that
    the first loop runs, and mail keeps going out."""
    with smtp_server() as server:
        outbox = outbox_for(database, smtp_to(server.port), SenderTiming(poll_seconds=0.05))
        first = asyncio.new_event_loop()
        thread = threading.Thread(target=first.run_forever, daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(outbox.sender.start(), first).result(WAIT_SECONDS)

            async def second_lifespan() -> None:
                await outbox.sender.start()
                await outbox.sender.stop()

            asyncio.run(second_lifespan())
            queue_committed(outbox, notice("after@example.com"))
            assert server.inbox.wait_for(1)[0].recipients == ["after@example.com"]
            asyncio.run_coroutine_threadsafe(outbox.sender.stop(), first).result(WAIT_SECONDS)
        finally:
            first.call_soon_threadsafe(first.stop)
            thread.join(WAIT_SECONDS)
            first.close()
