"""Proving an email address: a new link on request, and the link's use."""

from __future__ import annotations

from userservice.db.account_tokens import addressee
from userservice.db.ports import Storage
from userservice.db.users import UserRepository
from userservice.errors import InvalidAccountToken
from userservice.services.account_mail import Mailer, mail_locale
from userservice.services.account_tokens import LINK_INVALID, Purpose
from userservice.services.audit import audit, record

ACTION = "verify"


class Verification:
    def __init__(self, db: Storage, mailer: Mailer) -> None:
        self.db = db
        self.mailer = mailer

    def request(self, email: str, *, ip: str, locale: str) -> None:
        """Queue a new link when the address has an unverified account; the same
        answer in every case (L2), throttled per client and per address (L5)."""
        address = self.mailer.address_for(ACTION, email, ip)
        if address is None:
            return
        with self.db.unit_of_work() as uow:
            holder = addressee(uow, address)
            if holder is None or holder.email_verified or not holder.is_active:
                audit("verification.not_sent", ip=ip)
                return
            language = mail_locale(holder.locale, locale)
            self.mailer.link(uow, "verify_email", Purpose.VERIFY_EMAIL, holder, language)
        audit("verification.requested", user=holder.user_id, ip=ip)

    def check(self, token: str) -> None:
        """InvalidAccountToken unless the link can still verify; the token stays
        unused (mail scanners open links: only a POST uses one)."""
        with self.db.unit_of_work(read_only=True) as uow:
            self.mailer.tokens.check(uow, Purpose.VERIFY_EMAIL, token)

    def confirm(self, token: str, *, ip: str | None = None) -> None:
        """Mark the address verified. The token proves only the address it was sent
        to: after an email change it proves nothing (E8)."""
        with self.db.unit_of_work() as uow:
            user_id, email = self.mailer.tokens.use(uow, Purpose.VERIFY_EMAIL, token)
            users = UserRepository(uow)
            user = users.get_for_update(user_id)
            if user is None or user.email != email:
                audit("verification.refused", user=user_id, reason="address_changed")
                raise InvalidAccountToken(LINK_INVALID)
            user.email_verified = True
            users.flush_changes()
            record(uow, "email.verified", user=user_id, ip=ip)
