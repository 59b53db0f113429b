"""Changing the sign-in address: it takes effect only once the new address proves
itself, and the old address can undo it (L4)."""

from __future__ import annotations

import uuid

from userservice.db.ports import Storage
from userservice.services.account_mail import Mailer
from userservice.services.accounts import AccountService


class EmailChange:
    def __init__(self, db: Storage, accounts: AccountService, mailer: Mailer) -> None:
        self.db = db
        self.accounts = accounts
        self.mailer = mailer

    def request(
        self,
        user_id: uuid.UUID,
        new_email: str,
        current_password: str | None,
        *,
        ip: str,
        locale: str,
    ) -> None:
        raise NotImplementedError

    def check(self, token: str) -> None:
        raise NotImplementedError

    def confirm(self, token: str, *, ip: str) -> None:
        raise NotImplementedError

    def check_undo(self, token: str) -> None:
        raise NotImplementedError

    def undo(self, token: str, *, ip: str, locale: str) -> None:
        raise NotImplementedError
