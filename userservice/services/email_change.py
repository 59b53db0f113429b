"""Changing the sign-in address: it takes effect only once the new address proves
itself (L20), and the old address can undo it (L21).

Asking needs the current password. Whatever address is asked for, the caller
gets one answer and keeps the same data (a link stored for the address): a free
address gets the link that proves it, a taken one gets a notice to its owner and
nothing changes for anyone (L20). Once the new address
is confirmed, the old one gets a notice naming the new one partly masked, with a
link that undoes the change for a while: whoever changed it knew the password,
so the undo also ends every session and token and leaves a password only a reset
link can set (L21).

While an undo link is pending the address cannot change again: a second change
would move the address the undo must come from (a chain of changes through
mailboxes someone controls would leave the old address's undo useless), so the
undo link stays valid exactly while the address is the one its change set.

For as long as the undo link works the old address is reserved for its former
owner: nobody may sign up with it or change to it (answered as for a taken
address, nobody mailed), else whoever made the change could open an account on
it, leave the undo link useless and receive the next reset link sent there."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NoReturn

from userservice.db.account_tokens import Holder, addressee, reserved
from userservice.db.models import User
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.users import UserRepository
from userservice.errors import (
    Conflict,
    EmailTaken,
    InvalidAccountToken,
    InvalidInput,
    NotFound,
    SecondFactorNeeded,
)
from userservice.i18n import DEFAULT_LOCALE, N_
from userservice.services.account_mail import Mailer, mail_locale
from userservice.services.account_tokens import LINK_INVALID, Purpose, discard, pending
from userservice.services.accounts import AccountService, revoke_everything
from userservice.services.audit import audit, record
from userservice.services.emails import normalize_email
from userservice.services.factors import SecondFactors
from userservice.services.passkeys import PasskeyProof

ACTION = "email_change"
# The mail proving a new address: queued only when the address is free, so the
# export leaves it out (services/privacy.py; the request is in its links, L20).
VERIFY_MAIL = "email_change_verify"
# N_: the account page shows these two in its language.
SAME_ADDRESS = N_("This is already your sign-in address.")
UNDO_PENDING = N_(
    "Your address changed recently. It can change again once the link to undo that "
    "change, mailed to your previous address, has expired."
)
# The links of an account that name its address: after the address changes they
# would prove, verify or reset an address the account no longer has.
_ADDRESS_LINKS = (
    Purpose.CHANGE_EMAIL,
    Purpose.VERIFY_EMAIL,
    Purpose.RESET_PASSWORD,
    Purpose.UNDO_EMAIL_CHANGE,
)


def masked(address: str) -> str:
    """The address as a notice may show it: enough for its owner to recognise, too
    little for anyone else who reads the old mailbox (ada@example.org -> a•••@example.org)."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


class EmailChange:
    def __init__(
        self, db: Storage, accounts: AccountService, mailer: Mailer, factors: SecondFactors
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.mailer = mailer
        self.factors = factors

    def request(
        self,
        user_id: uuid.UUID,
        new_email: str,
        current_password: str | None,
        *,
        ip: str,
        locale: str,
        code: str | None = None,
        passkey: PasskeyProof | None = None,
    ) -> None:
        """Mail a link to the new address, or a notice to its owner when another
        account has it; the same outcome for the caller either way (L20). Nothing
        changes on any account. An account with a second factor needs its `code`
        too, or the proof of one of its passkeys (M7, M9)."""
        asked = normalize_email(new_email)  # a malformed one costs no password check
        self.accounts.require_current_password(user_id, current_password)
        self._require_second_factor(user_id, code, passkey, ip=ip, locale=locale)
        # Counted per address and per client network like every mail journey (L5),
        # only once the password is proven: nobody else can fill an address's window.
        address = self.mailer.address_for(ACTION, new_email, ip)
        with self.db.unit_of_work() as uow:
            user = UserRepository(uow).get_for_update(user_id)
            if user is None:
                raise NotFound("No such user.")
            if asked == user.email:
                raise InvalidInput(SAME_ADDRESS)
            if pending(uow, user_id, Purpose.UNDO_EMAIL_CHANGE):
                raise Conflict(UNDO_PENDING)
            # Only the newest link works, whichever address each was for: were the
            # older ones kept only for free addresses, a still-working link would
            # tell that the later address was taken.
            discard(uow, user_id, Purpose.CHANGE_EMAIL)
            record(uow, "email_change.requested", user=user_id, ip=ip)
            if address is None:
                return
            to = (user_id, address)
            holder = addressee(uow, address)
            if holder is None and not address_reserved(uow, address):
                language = mail_locale(user.locale, locale)
                self.mailer.link(uow, VERIFY_MAIL, Purpose.CHANGE_EMAIL, to, language)
                return
            # The asker's stored data must not tell either (their export lists their
            # links): a link is stored for this address too, its token thrown away.
            # It can never confirm: nobody holds it, and confirm re-checks the address.
            self.mailer.tokens.issue(uow, Purpose.CHANGE_EMAIL, user_id, address)
            if holder is None:
                # Reserved: its former owner is mid-undo and has the undo mail
                # already; a notice would tell them nothing they can act on (L21).
                audit("email_change.address_reserved", user=user_id, ip=ip)
                return
            audit("email_change.address_taken", user=user_id, ip=ip)
            owner = (holder.user_id, holder.email)
            language = mail_locale(holder.locale, locale)
            self.mailer.notice(uow, "email_change_taken", owner, language)

    def _require_second_factor(
        self,
        user_id: uuid.UUID,
        code: str | None,
        passkey: PasskeyProof | None,
        *,
        ip: str,
        locale: str,
    ) -> None:
        """M7: whoever learnt the password must not move the account to an address
        of theirs, where a reset link would then go. Asked only once the password
        is proven, so that a guess at it learns nothing of the account's factors;
        wrong codes count in the factor's own limit (M1). A passkey stands for the
        code only as a PasskeyProof of this account (M9), which Passkeys makes
        from an answer to a challenge bound to the caller's session: no request
        field can claim one."""
        if not self.factors.summary(user_id).enrolled:
            return
        if passkey is not None and passkey.user_id == user_id:
            return
        if code is None:
            raise SecondFactorNeeded(
                "This account has a second factor: the code from the authenticator app "
                "(or a recovery code) is needed too."
            )
        self.factors.verify(user_id, code, ip=ip, locale=locale)

    def check(self, token: str) -> None:
        """InvalidAccountToken unless the link can still change the address; the
        token stays unused (mail scanners open links: only a POST uses one)."""
        with self.db.unit_of_work(read_only=True) as uow:
            holder = self.mailer.tokens.check(uow, Purpose.CHANGE_EMAIL, token)
            _changeable(uow, holder, _account(uow, holder))

    def confirm(self, token: str, *, ip: str) -> str:
        """Make the link's address the account's, verified; returns it. The old
        address gets a notice with the undo link (L21)."""
        with self.db.unit_of_work() as uow:
            user, holder = self._use(uow, Purpose.CHANGE_EMAIL, token)
            _changeable(uow, holder, user)
            old, new = user.email, holder[1]
            _move(uow, user, new)
            language = mail_locale(user.locale, DEFAULT_LOCALE)
            shown = masked(new)
            to = (user.id, old)
            self.mailer.link(
                uow, "email_change_undo", Purpose.UNDO_EMAIL_CHANGE, to, language, new=shown
            )
            record(uow, "email_change.confirmed", user=user.id, ip=ip)
            return new

    def check_undo(self, token: str) -> None:
        """InvalidAccountToken unless the undo link can still restore the address;
        the token stays unused."""
        with self.db.unit_of_work(read_only=True) as uow:
            holder = self.mailer.tokens.check(uow, Purpose.UNDO_EMAIL_CHANGE, token)
            _undoable(uow, holder, _account(uow, holder))

    def undo(self, token: str, *, ip: str, locale: str) -> None:
        """Restore the old address, end every session and token, and leave a
        password only the reset link mailed to the restored address can replace:
        whoever made the change knew the password (L21)."""
        self.check_undo(token)
        # Hashed before the writing transaction (no lock held for argon2's time),
        # and only for a usable link: a made-up one costs no hash.
        locked = self.accounts.unusable_password_hash()
        with self.db.unit_of_work() as uow:
            user, holder = self._use(uow, Purpose.UNDO_EMAIL_CHANGE, token)
            _undoable(uow, holder, user)
            _move(uow, user, holder[1])
            user.password_hash = locked
            revoke_everything(uow, user)
            language = mail_locale(user.locale, locale)
            to = (user.id, user.email)
            self.mailer.link(uow, "reset_password", Purpose.RESET_PASSWORD, to, language)
            record(uow, "email_change.undone", user=user.id, ip=ip)

    def _use(self, uow: UnitOfWork, purpose: Purpose, token: str) -> tuple[User, Holder]:
        """Use the link, its account's row locked first (found by a plain read of
        the link): request() locks that row before it deletes the account's change
        links, and a use that locked the link's row first, then waited for the
        account's, could wait in a cycle with it (a deadlock on PostgreSQL)."""
        owner = self.mailer.tokens.check(uow, purpose, token)
        user = _account(uow, owner, for_update=True)
        return user, self.mailer.tokens.use(uow, purpose, token)


def address_reserved(uow: UnitOfWork, address: str) -> bool:
    """Whether a normalized address is the old address of a change whose undo link
    still works: no account may claim it, though none has it (L21)."""
    return reserved(uow, address, Purpose.UNDO_EMAIL_CHANGE, dt.datetime.now(dt.UTC))


def _account(uow: UnitOfWork, holder: Holder, *, for_update: bool = False) -> User:
    users = UserRepository(uow)
    user = users.get_for_update(holder[0]) if for_update else users.get(holder[0])
    if user is None or not user.is_active:
        _refuse(holder, "account")
    return user


def _changeable(uow: UnitOfWork, holder: Holder, user: User) -> None:
    """Whether the link's (active) account may move to its address: the address
    still free (another account may have taken or reserved it since), no undo
    pending."""
    if addressee(uow, holder[1]) is not None or address_reserved(uow, holder[1]):
        _refuse(holder, "address_taken")
    if pending(uow, user.id, Purpose.UNDO_EMAIL_CHANGE):
        _refuse(holder, "undo_pending")


def _undoable(uow: UnitOfWork, holder: Holder, user: User) -> None:
    """Whether the link's (active) account may move back: its old address free
    again. The link exists only while the address is the one its change set (no
    change while it is pending; any move of the address discards it)."""
    if user.email == holder[1] or addressee(uow, holder[1]) is not None:
        _refuse(holder, "address_taken")


def _move(uow: UnitOfWork, user: User, address: str) -> None:
    """The account's address becomes `address`, proven by the link just used;
    every other link naming an address of the account dies with the old one."""
    user.email = address
    user.email_verified = True
    try:
        UserRepository(uow).flush_changes()
    except EmailTaken:
        # Taken in a race by an account that committed after our check.
        _refuse((user.id, address), "address_taken")
    discard(uow, user.id, *_ADDRESS_LINKS)


def _refuse(holder: Holder, reason: str) -> NoReturn:
    audit("email_change.refused", user=holder[0], reason=reason)
    raise InvalidAccountToken(LINK_INVALID)
