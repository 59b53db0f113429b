"""Queueing a mail: composed now, written to the outbox inside the caller's unit of
work, delivered by the sender once that commits (L10)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from urllib.parse import urlencode

from userservice.db.ports import Storage, UnitOfWork
from userservice.i18n import Catalogs
from userservice.records import OutgoingMail
from userservice.services.at_rest import AtRest
from userservice.services.mail.compose import MailComposer
from userservice.services.mail.sender import MailSender, sealed_row
from userservice.services.mail.transport import transport_for
from userservice.settings import Settings


class MailOutbox:
    """What services reach as `svc.mail`."""

    def __init__(
        self,
        db: Storage,
        composer: MailComposer,
        sender: MailSender,
        *,
        issuer: str,
        at_rest: AtRest | None = None,
    ) -> None:
        self.db = db
        self.composer = composer
        self.sender = sender
        self.issuer = issuer.rstrip("/")
        self.at_rest = at_rest or AtRest()

    @classmethod
    def for_settings(cls, db: Storage, settings: Settings, catalogs: Catalogs) -> MailOutbox:
        composer = MailComposer(catalogs, app_name=settings.app_name, mail_from=settings.mail_from)
        at_rest = AtRest.for_settings(settings)
        transport = transport_for(settings.mail_url, settings.mail_from)
        sender = MailSender(db.outbox, transport, at_rest=at_rest)
        return cls(db, composer, sender, issuer=settings.issuer, at_rest=at_rest)

    def queue(self, uow: UnitOfWork, mail: OutgoingMail) -> str:
        """Add `mail` to the outbox in `uow`: it is sent if and only if `uow`
        commits. Returns its Message-ID."""
        queued = self.composer.compose(mail, dt.datetime.now(dt.UTC))
        # Its links are credentials until they expire: sealed while it waits (S11),
        # erased once it is settled (L12).
        sealed = self.at_rest.protect(queued.content, sealed_row(queued.message_id))
        self.db.outbox.add(uow, replace(queued, content=sealed), after_commit=self.sender.wake)
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
