"""The mail tests' side of the outbox: a mail kind of their own (mail_templates/,
beside the package's layouts), the outbox and sender built over a test's database
and transport, and the outbox rows as stored."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.support.accounts import ISSUER
from userservice.db.codec import utc
from userservice.db.models import OutboxMail
from userservice.db.ports import Storage
from userservice.i18n import Catalogs
from userservice.records import ClaimedMail, OutgoingMail
from userservice.services.at_rest import AtRest
from userservice.services.mail.compose import TEMPLATE_DIR, MailComposer
from userservice.services.mail.outbox import MailOutbox
from userservice.services.mail.sender import MailSender, SenderTiming
from userservice.services.mail.transport import Transport, transport_for

TEST_TEMPLATES = Path(__file__).parent / "mail_templates"
MAIL_FROM = "Acme Accounts <no-reply@acme.test>"
APP_NAME = "Acme"
# Quick enough for a test to watch several attempts.
QUICK = SenderTiming(poll_seconds=0.05, first_retry_seconds=0.05, max_retry_seconds=0.2)


class Kept:
    """An app's transport that also keeps each mail it is handed, for a test to read
    after the sender has delivered it: the outbox erases a settled mail (L12)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: dict[str, str] = {}  # Message-ID -> the message as sent

    async def send(self, mail: ClaimedMail) -> None:
        self.sent[mail.message_id] = mail.content
        await self.inner.send(mail)


def keeping_transport_for(mail_url: str, mail_from: str) -> Transport:
    return Kept(transport_for(mail_url, mail_from))


def composer(catalogs: Catalogs | None = None) -> MailComposer:
    return MailComposer(
        catalogs or Catalogs.load(),
        app_name=APP_NAME,
        mail_from=MAIL_FROM,
        template_dirs=(TEMPLATE_DIR, TEST_TEMPLATES),
    )


def outbox_for(
    db: Storage,
    transport: Transport,
    timing: SenderTiming = QUICK,
    issuer: str = ISSUER,
    at_rest: AtRest | None = None,
) -> MailOutbox:
    at_rest = at_rest or AtRest()
    sender = MailSender(db.outbox, transport, timing, at_rest=at_rest)
    return MailOutbox(db, composer(), sender, issuer=issuer, at_rest=at_rest)


def notice(
    to: str = "bob@example.com",
    *,
    link: str = f"{ISSUER}/verify-email?token=t0ken",
    locale: str = "en",
    user_id: uuid.UUID | None = None,
    **values: str,
) -> OutgoingMail:
    fields = {"name": "Bob", "topic": "your account", "link": link} | values
    return OutgoingMail("notice", to, locale, fields, user_id)


def queue_committed(outbox: MailOutbox, *mails: OutgoingMail) -> list[str]:
    """Each mail queued in a unit of work of its own, committed; their Message-IDs."""
    ids = []
    for mail in mails:
        with outbox.db.unit_of_work() as uow:
            ids.append(outbox.queue(uow, mail))
    return ids


@dataclass(frozen=True)
class Row:
    id: int
    message_id: str
    recipient: str
    kind: str
    attempts: int
    next_attempt_at: dt.datetime
    claimed_until: dt.datetime | None
    sent_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None
    content: str


def rows(db: Storage) -> list[Row]:
    """The outbox as stored, in id order, with aware datetimes on both databases."""
    with db.unit_of_work(read_only=True) as session:
        found = session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
        return [_row(mail) for mail in found]


def _row(mail: OutboxMail) -> Row:
    def moment(value: Any) -> dt.datetime | None:
        return utc(value) if value is not None else None

    return Row(
        mail.id,
        mail.message_id,
        mail.recipient,
        mail.kind,
        mail.attempts,
        utc(mail.next_attempt_at),
        moment(mail.claimed_until),
        moment(mail.sent_at),
        moment(mail.failed_at),
        mail.last_error,
        mail.content,
    )
