"""A mail sender alone in a process of its own, for the test that kills one by its
PID mid-batch: `python -m tests.support.mail_sender DATABASE_URL SMTP_PORT LEASE`.
It sends until no mail is pending, then exits 0 (1 if that takes too long)."""

from __future__ import annotations

import asyncio
import sys
import time

from tests.support.mail import rows
from userservice.db.engine import build_engine, open_database
from userservice.security.smtp_url import smtp_server
from userservice.services.mail.sender import MailSender, SenderTiming
from userservice.services.mail.transport import SmtpTransport

DEADLINE_SECONDS = 60.0
BATCH = 5


async def send_all(database_url: str, port: int, lease: float) -> int:
    db = open_database(build_engine(database_url))
    transport = SmtpTransport(
        smtp_server(f"smtp://127.0.0.1:{port}?tls=none"), "no-reply@acme.test", timeout=10
    )
    timing = SenderTiming(poll_seconds=0.05, batch=BATCH, lease_seconds=lease)
    sender = MailSender(db.outbox, transport, timing)
    await sender.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while time.monotonic() < deadline:
            pending = [
                r for r in await asyncio.to_thread(rows, db) if not (r.sent_at or r.failed_at)
            ]
            if not pending:
                return 0
            await asyncio.sleep(0.1)
        return 1
    finally:
        await sender.stop()
        await db.close_async()
        db.dispose()


if __name__ == "__main__":
    url, port, lease = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sys.exit(asyncio.run(send_all(url, port, lease)))
