"""A sender killed mid-batch (SIGKILL, by its PID): once a sender runs again every
mail arrives, and a mail sent twice is the same mail with the same Message-ID."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.support.mail import notice, outbox_for, queue_committed, rows
from tests.support.smtp import Inbox, smtp_server
from userservice.db.backend import Database
from userservice.services.mail.transport import ConsoleTransport

ROOT = Path(__file__).resolve().parents[3]
COUNT = 30
LEASE_SECONDS = 1.5
RUN_SECONDS = 90


def sender_process(db_url: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.support.mail_sender", db_url, str(port)]
    return subprocess.Popen([*command, str(LEASE_SECONDS)], cwd=ROOT, stderr=subprocess.PIPE)


def test_every_mail_arrives_after_a_sender_is_killed_mid_batch(
    database: Database, db_url: str
) -> None:
    """L11: a claim's lease outlives its sender: the rows it held are taken over
    once the lease runs out; none is lost."""
    # The queueing side only composes; the processes below send.
    outbox = outbox_for(database, ConsoleTransport())
    queued = queue_committed(outbox, *[notice(f"user{n}@example.com") for n in range(COUNT)])
    # A slow server: the kill lands while a batch is in hand.
    with smtp_server(inbox=Inbox(delay=0.05)) as server:
        first = sender_process(db_url, server.port)
        try:
            server.inbox.wait_for(7, timeout=30)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        time.sleep(0.2)  # a message in flight may still be accepted
        before = len(server.inbox.received)
        assert before < COUNT, "the sender finished before it was killed"
        held = [r for r in rows(database) if r.claimed_until is not None and not r.sent_at]
        assert held, "the killed sender held no lease"

        second = sender_process(db_url, server.port)
        try:
            second.wait(timeout=RUN_SECONDS)  # it stops by itself once nothing is pending
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        stderr = second.stderr.read().decode() if second.stderr else ""
        assert second.returncode == 0, stderr[-2000:]
        received = list(server.inbox.received)

    copies = Counter(r.message["Message-ID"] for r in received)
    assert set(copies) == set(queued)  # every mail arrived
    for message_id, count in copies.items():
        if count > 1:  # sent, then killed before it was recorded: the same mail again
            same = {
                r.message.as_string() for r in received if r.message["Message-ID"] == message_id
            }
            assert len(same) == 1
    assert sum(copies.values()) - COUNT <= 1  # at most the one in flight at the kill
    assert all(r.sent_at is not None for r in rows(database))
