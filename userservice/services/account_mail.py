"""What the mail journeys (sign-up, verification, password reset, email change) share: the queue
they write to, the links they mail, and the one place their requests are limited.

A mail is queued in the unit of work of the change that causes it, with the token
its link carries: both commit, or neither does. Links are built by the outbox from
the configured public URL, never from the request's Host header (L3)."""

from __future__ import annotations

import uuid

from userservice.db.account_tokens import Addressee, addressee
from userservice.db.ports import UnitOfWork
from userservice.i18n import LOCALES
from userservice.records import OutgoingMail
from userservice.security.mail_limits import MailThrottle
from userservice.services.account_tokens import AccountTokens, Purpose
from userservice.services.audit import audit
from userservice.services.emails import normalize_email
from userservice.services.mail import MailOutbox

PAGES = {
    Purpose.VERIFY_EMAIL: "/verify-email",
    Purpose.RESET_PASSWORD: "/reset-password",
    Purpose.CHANGE_EMAIL: "/confirm-email-change",
    Purpose.UNDO_EMAIL_CHANGE: "/undo-email-change",
}


class Mailer:
    """Queues the journeys' mails: a link carrying a fresh token, or a notice."""

    def __init__(self, tokens: AccountTokens, queue: MailOutbox, throttle: MailThrottle) -> None:
        self.tokens = tokens
        self.queue = queue
        self.throttle = throttle

    def link(
        self,
        uow: UnitOfWork,
        kind: str,
        purpose: Purpose,
        to: Addressee | tuple[uuid.UUID, str],
        locale: str,
        **values: str,
    ) -> None:
        """A mail carrying a new link of `purpose`; the template gets `link`, its
        lifetime in `minutes` (and whole `hours`), and `values`."""
        user_id, email = to[0], to[1]
        raw = self.tokens.issue(uow, purpose, user_id, email)
        link = self.queue.link(PAGES[purpose], token=raw)
        seconds = self.tokens.lifetime(purpose)
        lifetime = {"minutes": str(seconds // 60), "hours": str(seconds // 3600)}
        self.notice(uow, kind, (user_id, email), locale, **values, **lifetime, link=link)

    def notice(
        self, uow: UnitOfWork, kind: str, to: tuple[uuid.UUID, str], locale: str, **values: str
    ) -> None:
        self.queue.queue(uow, OutgoingMail(kind, to[1], locale, dict(values), to[0]))
        audit("mail.queued", kind=kind, user=to[0])

    def address_for(self, action: str, email: str, ip: str) -> str | None:
        """The normalized address a mail of `action` may go to, or None when the
        address's window is full (the request is answered as any other). Throttled
        when the client's window is full. Both counted for every address, with an
        account or not (L5)."""
        self.throttle.check_source(ip)
        address = normalize_email(email)
        if not self.throttle.allow_mail(action, address):
            audit("mail.throttled", action=action, ip=ip)
            return None
        return address


def reset_recipient(uow: UnitOfWork, address: str) -> Addressee | None:
    """The account a password reset link may be mailed to: the active account of
    the normalized `address`. A disabled one gets none by any route (a reset
    request, a sign-up with its address): the link would set a password of an
    account an administrator closed."""
    holder = addressee(uow, address)
    return holder if holder is not None and holder.is_active else None


def mail_locale(stored: str | None, asked: str) -> str:
    """The account's own language when it chose one, else the one of the request."""
    return stored if stored in LOCALES else asked
