"""Sign-up: a new, unverified account and the mail that verifies it.

The answer never tells whether the address already had an account unless the
caller asked for that (the JSON API's default contract, 201 or 409): a taken
address costs the same password hash and queues a mail too, to its owner, saying
someone tried to sign up with it and how to reset the password (L1), unless the
account is disabled (no reset link reaches one by any route). The existing account
and its password are left exactly as they were.

The old address of an email change whose undo link still works is reserved
(services/email_change.py, L21): a sign-up with it is answered as for a taken
address, but nobody is mailed, since no account has it and its former owner is
in the middle of taking it back."""

from __future__ import annotations

from userservice.db.ports import Storage, UnitOfWork
from userservice.db.preferences import PreferenceRepository
from userservice.errors import EmailTaken
from userservice.records import UserRecord
from userservice.services.account_mail import Mailer, mail_locale, reset_recipient
from userservice.services.account_tokens import Purpose
from userservice.services.accounts import AccountService
from userservice.services.audit import audit
from userservice.services.email_change import address_reserved
from userservice.services.emails import normalize_email

ACTION = "signup"


class SignUp:
    def __init__(self, db: Storage, accounts: AccountService, mailer: Mailer) -> None:
        self.db = db
        self.accounts = accounts
        self.mailer = mailer

    def register(
        self,
        email: str,
        password: str,
        display_name: str | None,
        *,
        ip: str,
        locale: str,
        reveal: bool,
    ) -> UserRecord | None:
        """The new account; None when the address was taken and `reveal` is off
        (EmailTaken when it is on)."""
        self.mailer.throttle.check_source(ip)

        def welcome(uow: UnitOfWork, user: UserRecord) -> None:
            # Checked after the insert, in its transaction: an email change moving
            # the address away commits before the insert can, and its undo link with
            # it (READ COMMITTED sees it here; SQLite has one writer).
            if address_reserved(uow, user.email):
                audit("signup.address_reserved", ip=ip)
                raise EmailTaken("An account with this email already exists.")
            # The language of the sign-up is the account's until it picks another:
            # its later mails (a reset asked for by API, say) speak it too.
            PreferenceRepository(uow).set_locale(user.id, locale)
            self.mailer.link(
                uow, "verify_email", Purpose.VERIFY_EMAIL, (user.id, user.email), locale
            )

        try:
            return self.accounts.register(email, password, display_name, then=welcome)
        except EmailTaken:
            if reveal:
                audit("signup.refused", reason="email_taken", ip=ip)
                raise
        self._tell_owner(normalize_email(email), ip, locale)
        return None

    def _tell_owner(self, address: str, ip: str, locale: str) -> None:
        audit("signup.existing_address", ip=ip)
        allowed = self.mailer.throttle.allow_mail(ACTION, address)
        # The lookup runs whether or not a mail may go, so that a full window of the
        # address does not make its answer faster than a new address's (L2).
        with self.db.unit_of_work() as uow:
            owner = reset_recipient(uow, address)
            if not allowed:
                audit("mail.throttled", action=ACTION, ip=ip)
            elif owner is None:
                # Deleted in between, or disabled: no reset link for either.
                audit("signup.owner_not_told", ip=ip)
            else:
                language = mail_locale(owner.locale, locale)
                self.mailer.link(uow, "signup_existing", Purpose.RESET_PASSWORD, owner, language)
