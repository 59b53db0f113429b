"""The links mailed to a user: verify an address, reset a forgotten password (E8),
confirm a new address and undo that change (L20, L21).

A token is 256 bits from the OS generator; only its SHA-256 is stored, bound to
one purpose and to the address the link was sent to, with an expiry. It is used
at most once, inside the unit of work of the change it allows, so a change that
fails leaves the token as it was. What arrives from a browser is checked for
shape before anything else: a long, NUL-bearing or non-ASCII value is no token
of ours and never reaches the database."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from enum import StrEnum
from typing import NoReturn

from userservice.db.account_tokens import AccountTokenRepository, Holder
from userservice.db.ports import UnitOfWork
from userservice.errors import InvalidAccountToken
from userservice.i18n import N_
from userservice.security.secrets import digest, new_token
from userservice.services.audit import audit

# new_token(32): 43 URL-safe characters.
_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


# The one text of a refused link: the API's problem detail, and the pages' message.
LINK_INVALID = N_(
    "This link is invalid, expired or already used. Ask for a new mail and use the newest link."
)


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose's name, no secret)
    # Proves the new address of an email change (the token's email is the new one).
    CHANGE_EMAIL = "change_email"
    # Mailed to the old address after a change (the token's email is the old one).
    UNDO_EMAIL_CHANGE = "undo_email_change"


class AccountTokens:
    def __init__(self, *, verification_ttl: int, reset_ttl: int, undo_ttl: int) -> None:
        self._ttl = {
            Purpose.VERIFY_EMAIL: dt.timedelta(seconds=verification_ttl),
            Purpose.RESET_PASSWORD: dt.timedelta(seconds=reset_ttl),
            Purpose.CHANGE_EMAIL: dt.timedelta(seconds=verification_ttl),
            Purpose.UNDO_EMAIL_CHANGE: dt.timedelta(seconds=undo_ttl),
        }

    def lifetime(self, purpose: Purpose) -> int:
        """Seconds a new token of `purpose` stays usable."""
        return int(self._ttl[purpose].total_seconds())

    def issue(self, uow: UnitOfWork, purpose: Purpose, user_id: uuid.UUID, email: str) -> str:
        """A new token for `email`'s link, stored in the caller's unit of work (it
        exists only if the mail carrying it is queued too)."""
        raw = new_token(32)
        now = dt.datetime.now(dt.UTC)
        AccountTokenRepository(uow).add(
            digest(raw), purpose, user_id, email, now, now + self._ttl[purpose]
        )
        return raw

    def check(self, uow: UnitOfWork, purpose: Purpose, raw: str) -> Holder:
        """The holder of a usable token, which stays unused; else InvalidAccountToken."""
        found = (
            AccountTokenRepository(uow).usable(digest(raw), purpose, dt.datetime.now(dt.UTC))
            if well_formed(raw)
            else None
        )
        if found is None:
            _refused(purpose, "check")
        return found

    def use(self, uow: UnitOfWork, purpose: Purpose, raw: str) -> Holder:
        """Use the token once, in the caller's unit of work: of parallel uses exactly
        one gets its holder; the others get InvalidAccountToken."""
        found = (
            AccountTokenRepository(uow).use(digest(raw), purpose, dt.datetime.now(dt.UTC))
            if well_formed(raw)
            else None
        )
        if found is None:
            _refused(purpose, "use")
        return found


def _refused(purpose: Purpose, step: str) -> NoReturn:
    # Never the token itself, nor its digest: a log is no place for a credential.
    audit("account_token.refused", purpose=purpose.value, step=step)
    raise InvalidAccountToken(LINK_INVALID)


def discard_resets(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """E8: a reset link dies when the password changes by any route, in the same
    unit of work as the new hash."""
    discard(uow, user_id, Purpose.RESET_PASSWORD)


def discard(uow: UnitOfWork, user_id: uuid.UUID, *purposes: Purpose) -> None:
    """Every link of these purposes the user holds, in the caller's unit of work."""
    AccountTokenRepository(uow).discard(user_id, *purposes)


def pending(uow: UnitOfWork, user_id: uuid.UUID, purpose: Purpose) -> bool:
    """Whether a usable link of `purpose` is still in one of the user's mailboxes."""
    return AccountTokenRepository(uow).pending(user_id, purpose, dt.datetime.now(dt.UTC))


def well_formed(raw: str | None) -> bool:
    return raw is not None and _SHAPE.fullmatch(raw) is not None
