"""The mail journeys seen from a test: the mails the outbox holds (parsed), the
link a mail carries, and the token in it."""

from __future__ import annotations

import re
from email import message_from_string, policy
from email.message import EmailMessage

from fastapi import FastAPI
from sqlalchemy import select

from tests.support.mail import Kept
from userservice.db.models import OutboxMail
from userservice.wiring import wired

_LINK = re.compile(r"https://testserver/[a-z-]+\?token=[A-Za-z0-9_-]+")


def mails(app: FastAPI, to: str | None = None, kind: str | None = None) -> list[EmailMessage]:
    """The queued mails, oldest first, as the sender delivers them: a delivered
    one as the app's transport kept it (the outbox erases it once sent)."""
    query = select(
        OutboxMail.message_id, OutboxMail.content, OutboxMail.recipient, OutboxMail.kind
    ).order_by(OutboxMail.id)
    services = wired(app)
    with services.accounts.db.unit_of_work(read_only=True) as session:
        rows = session.execute(query).all()
    transport = services.mail.sender.transport
    sent = transport.sent if isinstance(transport, Kept) else {}
    found = []
    for message_id, stored, recipient, row_kind in rows:
        if (to is None or recipient == to) and (kind is None or row_kind == kind):
            content = sent.get(message_id, stored)
            message = message_from_string(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage) -> str:
    found = _LINK.search(text_of(message))
    assert found, text_of(message)
    return found.group(0)


def token_in(message: EmailMessage) -> str:
    return link_in(message).split("token=", 1)[1]


def last_token(app: FastAPI, to: str, kind: str) -> str:
    found = mails(app, to, kind)
    assert found, f"no {kind} mail to {to}"
    return token_in(found[-1])
