"""Queueing a mail: composed now, written to the outbox inside the caller's unit of
work, delivered by the sender once that commits (L10)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from userservice.db.ports import Storage, UnitOfWork
from userservice.i18n import Catalogs
from userservice.records import OutgoingMail
from userservice.services.mail.compose import MailComposer
from userservice.services.mail.sender import MailSender
from userservice.services.mail.transport import transport_for
from userservice.settings import Settings


class MailOutbox:
    """What services reach as `svc.mail`."""

    def __init__(
        self, db: Storage, composer: MailComposer, sender: MailSender, *, issuer: str
    ) -> None:
        self.db = db
        self.composer = composer
        self.sender = sender
        self.issuer = issuer.rstrip("/")

    @classmethod
    def for_settings(cls, db: Storage, settings: Settings, catalogs: Catalogs) -> MailOutbox:
        composer = MailComposer(catalogs, app_name=settings.app_name, mail_from=settings.mail_from)
        sender = MailSender(db.outbox, transport_for(settings.mail_url, settings.mail_from))
        return cls(db, composer, sender, issuer=settings.issuer)

    def queue(self, uow: UnitOfWork, mail: OutgoingMail) -> str:
        """Add `mail` to the outbox in `uow`: it is sent if and only if `uow`
        commits. Returns its Message-ID."""
        queued = self.composer.compose(mail, dt.datetime.now(dt.UTC))
        self.db.outbox.add(uow, queued, after_commit=self.sender.wake)
        return queued.message_id

    def link(self, path: str, **query: str) -> str:
        return public_link(self.issuer, path, **query)


def public_link(issuer: str, path: str, **query: str) -> str:
    """An absolute link into this service for a mail: always under the configured
    public URL, never the request's Host header, which an attacker can set to make
    a reset link point at their own server (L13)."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"not a path on this service: {path!r}")
    return f"{issuer.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")
