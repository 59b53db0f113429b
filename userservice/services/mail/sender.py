"""The sender: claims queued mails in batches, hands each to the transport, and
records how it went. Woken right after a queue() commits; it also polls, for mail
queued by other workers and for retries that fall due."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from dataclasses import dataclass, replace

from userservice.db.ports import OutboxStore
from userservice.records import ClaimedMail
from userservice.services.at_rest import AtRest, AtRestError
from userservice.services.mail.transport import MailNotSent, MailRefused, Transport

# Kind, ids and outcome only: a mail's content carries single-use links (L16).
log = logging.getLogger("userservice.outbox")
_jitter = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class SenderTiming:
    poll_seconds: float = 5.0
    batch: int = 10
    # Taken for the whole batch, renewed before each mail and while it is being
    # sent (L11). A crashed sender's rows wait this long for another sender.
    lease_seconds: float = 120.0
    first_retry_seconds: float = 30.0
    max_retry_seconds: float = 3600.0
    # About a day of attempts at the cap: the links inside have expired by then.
    max_attempts: int = 30
    # A shutdown waits this long for the mail in hand (an SMTP attempt may take
    # its whole timeout); past it the row keeps its lease and is sent again later.
    stop_seconds: float = 10.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MailSender:
    def __init__(
        self,
        outbox: OutboxStore,
        transport: Transport,
        timing: SenderTiming = SenderTiming(),
        *,
        at_rest: AtRest | None = None,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.timing = timing
        self.at_rest = at_rest or AtRest()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Deliver soon: called by queue() once its unit of work has committed, on
        whichever thread committed it."""
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return  # not running: the next start claims whatever is pending
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
            loop.call_soon_threadsafe(event.set)

    async def start(self) -> None:
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            # Running already, maybe on another event loop: an ASGI host may run the
            # app's lifespan in a second loop beside the first (test harnesses do).
            # One sender per app is enough; that loop's stop() leaves it alone.
            return
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(self._event), name="mail-sender")

    def request_stop(self) -> None:
        """Stop after the message in hand; the rest of its batch is given back."""
        self._stopping = True
        if self._event is not None:
            self._event.set()

    async def stop(self) -> None:
        """Finish the message in hand, give the rest of the batch back, and end."""
        task = self._task
        if task is None or self._loop is not asyncio.get_running_loop():
            return  # not started, or started by (and stopped with) another loop
        self.request_stop()
        try:
            await asyncio.wait_for(task, self.timing.stop_seconds)
        except TimeoutError:
            # The rows in hand keep their lease and are sent again once it runs
            # out, with the same Message-ID.
            log.warning("mail sender did not stop within %s s", self.timing.stop_seconds)
        finally:
            self._task = self._loop = self._event = None

    async def _run(self, event: asyncio.Event) -> None:
        while not self._stopping:
            event.clear()
            try:
                claimed = await self.run_once()
            except Exception as exc:  # e.g. the database is down: try at the next poll
                log.warning("mail sender could not claim: %s", type(exc).__name__)
                claimed = 0
            if claimed >= self.timing.batch:
                continue  # a full batch: more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self.timing.poll_seconds)

    async def run_once(self) -> int:
        """Claim one batch and try each message; how many were claimed."""
        now = _now()
        claimed = await self.outbox.claim(now, self._lease(now), self.timing.batch)
        for index, mail in enumerate(claimed):
            if self._stopping:
                for untried in claimed[index:]:
                    await self.outbox.release(untried)
                break
            now = _now()
            # The batch's lease may have run out during the mails before this one
            # (a slow server): another sender may hold this mail now (L11).
            if await self.outbox.renew(mail, now, self._lease(now)):
                await self._deliver(mail)
            else:
                _report(logging.WARNING, mail, "skipped", None)
        return len(claimed)

    def _lease(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.timing.lease_seconds)

    async def _send_holding(self, mail: ClaimedMail) -> None:
        """Send, renewing the lease while the transport works: one slow mail (an SMTP
        step may take its whole timeout) must not outlast the lease either."""
        try:
            content = self.at_rest.reveal(mail.content, sealed_row(mail.message_id))
        except AtRestError as exc:
            raise MailNotSent(str(exc)) from None
        sending = asyncio.ensure_future(self.transport.send(replace(mail, content=content)))
        try:
            while not sending.done():
                await asyncio.wait({sending}, timeout=self.timing.lease_seconds / 3)
                if not sending.done():
                    now = _now()
                    # The mail goes out whatever the database says now.
                    with contextlib.suppress(Exception):
                        await self.outbox.renew(mail, now, self._lease(now))
        finally:
            sending.cancel()  # a stop's timeout: nothing waits for it any more
        sending.result()

    async def _deliver(self, mail: ClaimedMail) -> None:
        try:
            await self._send_holding(mail)
        except MailRefused as exc:
            await self.outbox.failed(mail, _now(), str(exc))
            _report(logging.ERROR, mail, "failed", str(exc))
        except Exception as exc:
            error = str(exc) if isinstance(exc, MailNotSent) else type(exc).__name__
            if mail.attempt >= self.timing.max_attempts:
                reason = f"gave up after {mail.attempt} attempts: {error}"
                await self.outbox.failed(mail, _now(), reason)
                _report(logging.ERROR, mail, "failed", error)
                return
            at = _now() + dt.timedelta(seconds=backoff(self.timing, mail.attempt))
            await self.outbox.retry(mail, at, error)
            _report(logging.WARNING, mail, "retry", error)
        else:
            # Sent before it is recorded: a crash in between sends it once more,
            # with the same Message-ID, rather than losing it.
            await self.outbox.delivered(mail, _now())
            _report(logging.INFO, mail, "sent", None)


def sealed_row(message_id: str) -> str:
    """What a pending mail's content is sealed to (S11): a sealed message copied
    onto another row does not open."""
    return f"mail_outbox {message_id}"


def backoff(timing: SenderTiming, attempt: int) -> float:
    """Seconds before the next attempt: doubling from the first retry, capped, and
    spread (half to all of it) so that a server coming back is not met by every
    worker's queue at the same moment."""
    ceiling = min(timing.max_retry_seconds, timing.first_retry_seconds * 2 ** (attempt - 1))
    return _jitter.uniform(ceiling / 2, ceiling)


def _report(level: int, mail: ClaimedMail, outcome: str, error: str | None) -> None:
    # A server's reply text may quote the address: only its code is logged; the
    # whole reply is kept in the row's last_error.
    code = error.split()[0] if error else None
    log.log(
        level,
        "mail kind=%s id=%s message_id=%s attempt=%s outcome=%s%s",
        mail.kind,
        mail.id,
        mail.message_id,
        mail.attempt,
        outcome,
        f" error={code}" if code else "",
    )
