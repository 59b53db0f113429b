"""What the second-factor services share: the per-account limit on wrong codes,
the revocation a factor change brings, the notices it mails (M1, M3), and the
refusals of the sign-in rule (M8, M13)."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from limits import parse_many

from userservice.db.models import User
from userservice.db.policy_switch import sign_out
from userservice.db.ports import UnitOfWork
from userservice.db.users import UserRepository
from userservice.errors import NotFound, Throttled
from userservice.i18n import DEFAULT_LOCALE
from userservice.observability.metrics import NoMetrics
from userservice.security import recovery_codes
from userservice.security.counters import FAILED, RELEASED, Counters, Hold, Window
from userservice.services.account_mail import Mailer, mail_locale
from userservice.services.accounts import revocation_mark
from userservice.services.client_address import printable_ip

# Where the mails send someone who did not make the change: a new password ends
# every session, and the attacker's with them (E7).
RECOVERY_PAGE = "/forgot-password"

# M8, M13: the refusals of removing the last factor while the rule requires one.
ADMIN_KEEPS_APP = (
    "Administrators must keep their authenticator app while the policy requires "
    "one. For a new phone, ask another administrator to reset your factors; you "
    "set up the new app at your next sign-in."
)
EVERYONE_KEEPS_A_FACTOR = (
    "Every account must keep a second factor while the policy requires one: add a "
    "passkey before removing the authenticator app, or, for a new phone, ask an "
    "administrator to reset your factors; you set up the new one at your next sign-in."
)
NO_FACTOR = "Recovery codes go with a second factor: set up an authenticator app or a passkey."


class CodeThrottle:
    """Wrong second-factor codes per account (M1, M6): its own windows, apart from
    the password's, so that neither kind of guess spends the other's budget.
    Only failures count; an attempt holds its place until settled
    (security/throttle.py), so a burst of guesses cannot all pass at once.

    Several windows (`5/5minutes;20/day`), each counting every failure and
    admitted at once: a short window alone is only a rate, which over a day
    still lets a guesser try some 1,440 codes (M1)."""

    def __init__(self, limit: str, counters: Counters, metrics: NoMetrics | None = None) -> None:
        self._limits = parse_many(limit)
        self._counters = counters
        self._metrics = metrics or NoMetrics()

    def admit(self, user_id: uuid.UUID) -> Hold:
        admission = self._counters.admit_blocking(self.windows(user_id))
        if isinstance(admission, Hold):
            return admission
        self._metrics.throttled("second_factor")
        # The longest wait of the full windows: until each of them has room.
        raise Throttled(max(1, math.ceil(admission.wait)))

    def windows(self, user_id: uuid.UUID) -> tuple[Window, ...]:
        # limits' key names each window's amount and period, so the account's
        # windows are counted apart.
        return tuple(Window(item, "second-factor", user_id.hex) for item in self._limits)

    def failed(self, hold: Hold) -> None:
        self._counters.settle_blocking(hold, FAILED)

    def passed(self, hold: Hold) -> None:
        # Released, not SUCCEEDED: a success does not wipe the failures before it,
        # or the owner signing in would reset the count of someone guessing with
        # the stolen password.
        self._counters.settle_blocking(hold, RELEASED)


def end_everything(uow: UnitOfWork, user: User) -> int:
    """M3: every browser session, refresh, access token and unredeemed code of the
    user ends with a factor change, in its unit of work; the browser that made
    the change is given a new session by its caller. The number of sessions."""
    # The same statements as the switch of the sign-in rule, for one account (one
    # rule of revocation, in one place: db/policy_switch.py).
    ended = sign_out(uow, User.id == user.id, mark=revocation_mark(), now=now())
    # The mark (and updated_at) changed under the loaded account: read anew on use.
    uow.expire(user, ["tokens_valid_after", "updated_at"])
    return ended[0].sessions if ended else 0


class FactorNotices:
    """The mails of factor changes (M3): what happened, when, from where, and what
    to do when it was not the owner; queued in the change's unit of work (L10)."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def send(
        self,
        uow: UnitOfWork,
        kind: str,
        user: User,
        locale: str | None,
        ip: str | None,
        **extra: str,
    ) -> None:
        """`extra`: the kind's own values (`kept`: factors the change left)."""
        language = mail_locale(user.locale, locale or DEFAULT_LOCALE)
        values = {
            **extra,
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            # Built from the configured public URL, never the request's Host (L3).
            "link": self.mailer.queue.link(RECOVERY_PAGE),
        }
        # Empty when unknown (a command, no client address): the mail leaves the
        # sentence out.
        values["ip"] = printable_ip(ip) or ""
        self.mailer.notice(uow, kind, (user.id, user.email), language, **values)


def locked_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    user = UserRepository(uow).get_for_update(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def digests(codes: list[str]) -> list[str]:
    return [recovery_codes.code_digest(code) for code in codes]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
