"""A forgotten password: a reset link on request, and a new password through it.

The request is answered the same whether or not the address has an account, and
in about the same time: the mail is queued, never sent inline (L2). The new
password follows the password policy, ends every session, refresh token and
access token of the account, kills every other reset link, and is announced by
mail; it does not sign anyone in (L4)."""

from __future__ import annotations

from userservice.db.ports import Storage
from userservice.db.users import UserRepository
from userservice.errors import InvalidAccountToken
from userservice.services.account_mail import Mailer, mail_locale, reset_recipient
from userservice.services.account_tokens import LINK_INVALID, Purpose
from userservice.services.accounts import AccountService
from userservice.services.audit import audit, record

ACTION = "reset"


class PasswordReset:
    def __init__(self, db: Storage, accounts: AccountService, mailer: Mailer) -> None:
        self.db = db
        self.accounts = accounts
        self.mailer = mailer

    def request(self, email: str, *, ip: str, locale: str) -> None:
        address = self.mailer.address_for(ACTION, email, ip)
        if address is None:
            return
        with self.db.unit_of_work() as uow:
            holder = reset_recipient(uow, address)
            if holder is None:
                audit("password_reset.not_sent", ip=ip)
                return
            language = mail_locale(holder.locale, locale)
            self.mailer.link(uow, "reset_password", Purpose.RESET_PASSWORD, holder, language)
        audit("password_reset.requested", user=holder.user_id, ip=ip)

    def check(self, token: str) -> None:
        """InvalidAccountToken unless the link can still set a password (the form is
        shown only for a usable one); the token stays unused."""
        with self.db.unit_of_work(read_only=True) as uow:
            self.mailer.tokens.check(uow, Purpose.RESET_PASSWORD, token)

    def confirm(self, token: str, password: str, *, locale: str, ip: str | None = None) -> None:
        with self.db.unit_of_work(read_only=True) as uow:
            _user_id, email = self.mailer.tokens.check(uow, Purpose.RESET_PASSWORD, token)
        # Hashed before the writing transaction (no lock held for argon2's time), and
        # only for a usable token: a made-up one costs no hash.
        new_hash = self.accounts.checked_password(password, email)
        with self.db.unit_of_work() as uow:
            user_id, email = self.mailer.tokens.use(uow, Purpose.RESET_PASSWORD, token)
            users = UserRepository(uow)
            user = users.get_for_update(user_id)
            if user is None or user.email != email or not user.is_active:
                audit("password_reset.refused", user=user_id)
                raise InvalidAccountToken(LINK_INVALID)
            self.accounts.apply_new_password(uow, user, new_hash, ip=ip)
            # The link reached this address and was followed: it is proven too.
            user.email_verified = True
            users.flush_changes()
            language = mail_locale(user.locale, locale)
            again = self.mailer.queue.link("/forgot-password")
            self.mailer.notice(uow, "password_changed", (user.id, user.email), language, link=again)
            record(uow, "password.reset", user=user_id, ip=ip)
