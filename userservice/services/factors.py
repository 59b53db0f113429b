"""Second factors (M1-M3, M8, M13): an authenticator app (TOTP) and the ten
recovery codes that go with any second factor (the app or a passkey), enrolled by
verified accounts, checked at the second step of sign-in.

Synchronous: the pages and the API call these in a worker thread
(anyio.to_thread.run_sync). Every change is one unit of work with its audit
event, its revocations and its mail: all commit, or none does."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from userservice.db.factors import (
    MFA_REQUIRED_FOR,
    FactorRepository,
    PolicyRepository,
    has_second_factor,
)
from userservice.db.ports import Storage
from userservice.db.users import UserRepository
from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidCode,
    InvalidInput,
    NotFound,
    Throttled,
)
from userservice.observability.metrics import NoMetrics
from userservice.records import UserRecord
from userservice.security import recovery_codes, totp
from userservice.security.counters import Counters, Hold
from userservice.services.account_mail import Mailer
from userservice.services.assurance import ONE_TIME_CODE
from userservice.services.at_rest import AtRest
from userservice.services.audit import record
from userservice.services.client_address import printable_ip
from userservice.services.emails import normalize_email
from userservice.services.factor_support import (
    ADMIN_KEEPS_APP,
    EVERYONE_KEEPS_A_FACTOR,
    NO_FACTOR,
    CodeThrottle,
    FactorNotices,
    digests,
    end_everything,
    locked_user,
    now,
)
from userservice.services.mfa_rule import applies, effective

# An enrolment not confirmed within this time must be started again: a QR code
# left on a screen stops being worth photographing.
ENROLMENT_SECONDS = 15 * 60
UNVERIFIED = "Verify your email address before adding a second factor."
_WRONG = "The code is not correct, or it was used already."


@dataclass(frozen=True, slots=True)
class FactorSummary:
    totp: bool  # a confirmed authenticator app
    totp_confirmed_at: dt.datetime | None
    recovery_codes_left: int  # unused recovery codes (0 without any factor)
    passkeys: int = 0  # how many passkeys (services/passkeys.py keeps them)

    @property
    def enrolled(self) -> bool:
        """True when a factor signs in: the app or a passkey (recovery codes only
        stand in for one, as db/factors.has_factor counts)."""
        return self.totp or self.passkeys > 0


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str  # base32, for typing into an app
    uri: str  # otpauth://totp/<issuer>:<email>?secret=...&issuer=...
    qr_svg: str  # inline <svg ...> markup made by segno (no XML declaration)


def _row(user_id: uuid.UUID) -> str:
    # The envelope is bound to its row: a sealed secret copied to another user's
    # row does not open (S11).
    return f"totp:{user_id}"


class SecondFactors:
    def __init__(
        self,
        db: Storage,
        at_rest: AtRest,
        mailer: Mailer,
        counters: Counters,
        *,
        limit: str,
        issuer: str,
        metrics: NoMetrics | None = None,
    ) -> None:
        self.db = db
        self.at_rest = at_rest
        self.notices = FactorNotices(mailer)
        self.throttle = CodeThrottle(limit, counters, metrics)
        self.issuer = issuer

    def summary(self, user_id: uuid.UUID) -> FactorSummary:
        with self.db.unit_of_work(read_only=True) as uow:
            factors = FactorRepository(uow)
            app = factors.totp(user_id)
            left = factors.code_counts(user_id).left
            passkeys = factors.passkey_count(user_id)
        confirmed = app.confirmed_at if app is not None else None
        # M2: codes left behind by no factor (none should be) are not offered.
        usable = confirmed is not None or passkeys > 0
        return FactorSummary(confirmed is not None, confirmed, left if usable else 0, passkeys)

    def start_totp(self, user_id: uuid.UUID, *, ip: str | None) -> TotpEnrolment:
        secret = totp.new_secret()
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            if not user.email_verified:
                # M3: an unproven address cannot be told of factor changes, nor be
                # used to get back in.
                raise EmailNotVerified(UNVERIFIED)
            sealed = self.at_rest.protect(secret, _row(user_id))
            if not FactorRepository(uow).start_totp(user_id, sealed, now()):
                raise Conflict("An authenticator app is set up already: remove it first.")
            record(uow, "factor.enrolment_started", user=user_id, ip=printable_ip(ip))
            email = user.email
        uri = totp.provisioning_uri(secret, email, self.issuer)
        title = f"{self.issuer}: {email}"
        return TotpEnrolment(secret, uri, totp.qr_svg(uri, title))

    def confirm_totp(
        self, user_id: uuid.UUID, code: str, *, ip: str | None, locale: str
    ) -> list[str]:
        started_after = now() - dt.timedelta(seconds=ENROLMENT_SECONDS)
        with self.db.unit_of_work(read_only=True) as uow:
            app = FactorRepository(uow).totp(user_id)
        if app is None or app.confirmed_at is not None or app.created_at <= started_after:
            raise NotFound("No authenticator app is waiting for its first code: start again.")
        hold = self._admit(user_id, ip)
        try:
            step = totp.matched_step(self.at_rest.reveal(app.secret, _row(user_id)), code)
            codes = recovery_codes.new_codes()
            with self.db.unit_of_work() as uow:
                user = locked_user(uow, user_id)
                factors = FactorRepository(uow)
                if step is None or not factors.confirm_totp(user_id, step, now(), started_after):
                    raise InvalidCode(_WRONG)
                factors.replace_codes(user_id, digests(codes), now())
                ended = end_everything(uow, user)
                record(uow, "factor.added", user=user_id, ip=printable_ip(ip), sessions=ended)
                self.notices.send(uow, "factor_added", user, locale, ip)
        except InvalidCode:
            self._failed(hold, user_id, ip, "enrolment")
            raise
        except BaseException:
            self.throttle.passed(hold)
            raise
        self.throttle.passed(hold)
        return codes

    def remove_totp(self, user_id: uuid.UUID, *, ip: str | None, locale: str) -> None:
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            factors = FactorRepository(uow)
            app = factors.totp(user_id)
            if app is None or app.confirmed_at is None:
                raise NotFound("No authenticator app is set up.")
            # The policy's row is held until this commits, so a switch at the same
            # moment comes after, and signs out whoever this leaves without a factor.
            rule = effective(PolicyRepository(uow).get_for_share(MFA_REQUIRED_FOR))
            factors.delete_totp(user_id, confirmed_only=True)
            left = has_second_factor(uow, user_id)
            if not left and applies(rule, is_admin=user.is_admin):
                # M8, M13: under the rule the last factor stays, or the account
                # would sign in with the password alone until its next sign-in.
                # Read after the delete, with the account's row locked first: a
                # passkey removed at the same moment waits, then is refused the
                # same way (services/passkeys.py). Raising rolls back.
                raise Conflict(ADMIN_KEEPS_APP if rule == "admins" else EVERYONE_KEEPS_A_FACTOR)
            if not left:
                # M2: codes stand in for a factor; with none left they would be a
                # second password.
                factors.delete_codes(user_id)
            ended = end_everything(uow, user)
            record(uow, "factor.removed", user=user_id, ip=printable_ip(ip), sessions=ended)
            # M3: the notice says what still guards the account.
            kept = {"kept": "passkey"} if left else {}
            self.notices.send(uow, "factor_removed", user, locale, ip, **kept)

    def regenerate_recovery_codes(
        self, user_id: uuid.UUID, *, ip: str | None, locale: str
    ) -> list[str]:
        codes = recovery_codes.new_codes()
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            factors = FactorRepository(uow)
            if not has_second_factor(uow, user_id):
                raise Conflict(NO_FACTOR)
            # M2: the old set is void from this commit on.
            factors.replace_codes(user_id, digests(codes), now())
            record(uow, "factor.recovery_codes_renewed", user=user_id, ip=printable_ip(ip))
            self.notices.send(uow, "recovery_codes_renewed", user, locale, ip)
        return codes

    def verify(self, user_id: uuid.UUID, code: str, *, ip: str | None, locale: str) -> str:
        """The second step of a sign-in: InvalidCode for a wrong, used or late code
        (one answer for all), Throttled past the account's limit."""
        hold = self._admit(user_id, ip)
        try:
            method = self._check(user_id, code, ip, locale)
        except BaseException:
            self.throttle.passed(hold)
            raise
        if method is None:
            self._failed(hold, user_id, ip, "sign_in")
            raise InvalidCode(_WRONG)
        self.throttle.passed(hold)
        return ONE_TIME_CODE

    def _check(self, user_id: uuid.UUID, code: str, ip: str | None, locale: str) -> str | None:
        """`totp` or `recovery_code` when the code was good (and is now spent)."""
        with self.db.unit_of_work(read_only=True) as uow:
            app = FactorRepository(uow).totp(user_id)
        address = printable_ip(ip)
        if totp.normalized(code) is not None:
            if app is None or app.confirmed_at is None:
                return None
            step = totp.matched_step(self.at_rest.reveal(app.secret, _row(user_id)), code)
            if step is None:
                return None
            with self.db.unit_of_work() as uow:
                # M1: one conditional UPDATE; a replay of this step or an older one
                # matches no row.
                if not FactorRepository(uow).use_step(user_id, step):
                    return None
                record(uow, "factor.verified", user=user_id, ip=address, method="totp")
            return "totp"
        if not recovery_codes.looks_like_code(code):
            return None
        with self.db.unit_of_work() as uow:
            factors = FactorRepository(uow)
            # M2: a code stands in for the app or a passkey (a passkey-only account
            # has codes too), never for no factor at all.
            if not has_second_factor(uow, user_id):
                return None
            if not factors.use_code(user_id, recovery_codes.code_digest(code), now()):
                return None
            user = locked_user(uow, user_id)
            left = factors.code_counts(user_id).left
            record(uow, "factor.recovery_code_used", user=user_id, ip=address, left=left)
            record(uow, "factor.verified", user=user_id, ip=address, method="recovery_code")
            self.notices.send(uow, "recovery_code_used", user, locale, ip)
        return "recovery_code"

    def _admit(self, user_id: uuid.UUID, ip: str | None) -> Hold:
        try:
            return self.throttle.admit(user_id)
        except Throttled:
            # Stored: a burst of refused guesses shows in the user's own trail.
            with self.db.unit_of_work() as uow:
                record(uow, "factor.throttled", user=user_id, ip=printable_ip(ip))
            raise

    def _failed(self, hold: Hold, user_id: uuid.UUID, ip: str | None, during: str) -> None:
        # Counted before the event is stored: a failing audit write never un-counts
        # a guess (as for passwords, S12).
        self.throttle.failed(hold)
        with self.db.unit_of_work() as uow:
            record(uow, "factor.failed", user=user_id, ip=printable_ip(ip), during=during)

    def reset(
        self,
        user_id: uuid.UUID,
        *,
        actor_id: uuid.UUID | None,
        ip: str | None,
        via: str | None = None,
    ) -> None:
        """M8: an administrator removes every factor of a user who lost them;
        `via` names a tool acting with no account (the command line)."""
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            factors = FactorRepository(uow)
            had_app = factors.delete_totp(user_id)
            passkeys = factors.delete_passkeys(user_id)
            codes = factors.delete_codes(user_id)
            ended = end_everything(uow, user)
            record(
                uow,
                "factors.reset",
                user=user_id,
                actor=actor_id,
                ip=printable_ip(ip),
                app=had_app,
                passkeys=passkeys,
                recovery_codes=codes,
                sessions=ended,
                **({"via": via} if via else {}),
            )
            self.notices.send(uow, "factors_reset", user, None, ip)

    def reset_by_email(self, email: str, *, via: str) -> UserRecord:
        """M8: the reset of a tool acting with no account (the command line),
        naming the user by address as its operator does. NotFound when no account
        has the address, or it is no address at all."""
        try:
            address = normalize_email(email)
        except InvalidInput:
            raise NotFound("No such user.") from None
        with self.db.unit_of_work(read_only=True) as uow:
            found = UserRepository(uow).credentials(address)
        if found is None:
            raise NotFound("No such user.")
        user = found[0]
        self.reset(user.id, actor_id=None, ip=None, via=via)
        return user
