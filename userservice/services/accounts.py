"""Accounts: registration, credentials, profile changes, administration."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from userservice.db.authorization_codes import CodeRepository
from userservice.db.models import User
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.db.users import (
    UserRepository,
    user_record,
)
from userservice.errors import (
    AuthenticationFailed,
    EmailNotVerified,
    Forbidden,
    InvalidInput,
    NotFound,
    RegistrationClosed,
    ServiceUnavailable,
    Throttled,
    WeakPassword,
)
from userservice.observability.metrics import NoMetrics
from userservice.records import UserRecord
from userservice.security.counters import FAILED, HOLD_SECONDS, RELEASED, SUCCEEDED
from userservice.security.password_policy import password_problem
from userservice.security.passwords import PasswordHasher
from userservice.security.secrets import new_token
from userservice.security.throttle import LoginThrottle, LoginThrottled
from userservice.services.account_tokens import discard_resets
from userservice.services.audit import audit, record, record_now
from userservice.services.devices import DeviceCookies
from userservice.services.emails import normalize_email
from userservice.services.login_limits import (
    BrowserLogin,
    current_password_windows,
    login_windows,
)

UNSET = object()
# The credentials row and hash; None: no such account.
_Credentials = tuple[UserRecord, str] | None
# Run inside registration's unit of work with the new account (a mail to queue).
AfterRegister = Callable[[UnitOfWork, UserRecord], None]
UNVERIFIED = (
    "Verify your email address first: open the link in the mail we sent you, "
    "or ask for a new mail (POST /users/verification, or the sign-in page)."
)
BUSY = "Too many sign-ins are being checked right now; try again in a moment."


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A failed password check, as its stored event names it (L25)."""

    user_id: uuid.UUID | None
    reason: str


@dataclass(frozen=True)
class ProfileChanges:
    display_name: str | object | None = UNSET
    new_password: str | None = None
    current_password: str | None = None


def _revocation_mark() -> int:
    # Tokens carry whole-second `iat`s; a mark at the next second refuses every
    # token issued up to now, and new tokens are stamped iat >= mark (tokens.py).
    return math.floor(time.time()) + 1


def revoke_everything(uow: UnitOfWork, user: User) -> None:
    """End every access token, refresh token, browser session and unredeemed
    authorization code issued to the user so far, in the caller's unit of work
    (password set, account disabled, sign out everywhere, address change undone)."""
    user.tokens_valid_after = _revocation_mark()
    # First the codes: on PostgreSQL this waits for a redemption holding one to
    # commit, so the refresh tokens it bought are there to be revoked next (L23).
    CodeRepository(uow).discard_unredeemed(user.id)
    RefreshTokenRepository(uow).revoke_all_for_user(user.id, dt.datetime.now(dt.UTC))


class AccountService:
    def __init__(
        self,
        db: Storage,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        devices: DeviceCookies,
        *,
        registration_open: bool,
        require_verified_email: bool = False,
        attempt_seconds: float = HOLD_SECONDS / 2,
        metrics: NoMetrics | None = None,
    ) -> None:
        # An attempt's throttle hold is counted for HOLD_SECONDS at least: one that
        # waited longer for the hash pool (a flood) would outlive its hold, and
        # guesses past the limit would be admitted. So each gives up well before.
        self.attempt_seconds = attempt_seconds
        self.db = db
        self.hasher = hasher
        self.throttle = throttle
        self.devices = devices
        self.registration_open = registration_open
        self.require_verified_email = require_verified_email
        self.metrics = metrics or NoMetrics()

    def checked_password(self, password: str, email: str) -> str:
        """The hash of an acceptable new password; WeakPassword otherwise."""
        problem = password_problem(password, email=email)
        if problem:
            raise WeakPassword(problem)
        return self.hasher.hash(password)

    def register(
        self,
        email: str,
        password: str,
        display_name: str | None,
        *,
        admin: bool = False,
        then: AfterRegister | None = None,
    ) -> UserRecord:
        if not self.registration_open and not admin:
            raise RegistrationClosed("Self-registration is closed on this server.")
        normalized = normalize_email(email)
        # Hash before opening the transaction: no lock is held for the ~20 ms of argon2.
        password_hash = self.checked_password(password, normalized)
        with self.db.unit_of_work() as session:
            user = UserRepository(session).add(
                User(
                    id=uuid.uuid4(),
                    email=normalized,
                    display_name=display_name,
                    password_hash=password_hash,
                    is_active=True,
                    is_admin=admin,
                    email_verified=False,
                    tokens_valid_after=0,
                )
            )
            record(session, "user.registered", user=user.id, admin=admin)
            created = user_record(user)
            if then is not None:
                then(session, created)
            return created

    async def authenticate(
        self, email: str, password: str, ip: str, *, browser: BrowserLogin | None = None
    ) -> UserRecord:
        """Check a password. Unknown account, wrong password and disabled account
        are one indistinguishable failure, in body and in time (dummy verify).

        On the event loop: the row is read there and argon2 runs on the hasher's
        pool, one thread hand-off per login. The attempt holds its place in its
        throttle windows until it is settled (security/throttle.py); which window
        is services/login_limits.py's rule (S12). `browser`: from the sign-in page."""
        try:
            account: str | None = normalize_email(email)
        except InvalidInput:
            account = None  # cannot exist; still costs one hash below
        throttle_key = account or email.strip().lower()[:320]
        device = self.devices.read(browser.device_cookie) if browser is not None else None
        read: tuple[_Credentials] | None = None
        user_id: uuid.UUID | None = None
        if device is not None and account:
            # Only a browser proving a device needs the account's id before the
            # throttle: is the cookie this account's? (Read once, used below.)
            read = (await self.db.users.credentials(account),)
            user_id = read[0][0].id if read[0] is not None else None
        windows = login_windows(throttle_key, ip, browser=browser, device=device, user_id=user_id)
        try:
            hold = await self.throttle.check(windows)
        except LoginThrottled as refused:
            audit("login.throttled", account=throttle_key, ip=ip, window=windows.kind)
            self.metrics.login("throttled")
            self.metrics.throttled(refused.limit)
            raise
        try:
            with anyio.fail_after(self.attempt_seconds):
                outcome = await self._check_password(account, password, read)
        except BaseException as error:
            await self.throttle.released(hold)
            if isinstance(error, TimeoutError):
                self.metrics.login("throttled")
                self.metrics.throttled("attempts")
                raise ServiceUnavailable(BUSY) from None
            raise
        if isinstance(outcome, _Refusal):
            # Counted before the event is stored: a failing audit write can never
            # un-count a wrong password (S12).
            await self.throttle.failed(hold)
            # The right password of a disabled account: refused, not a guess.
            self.metrics.login("refused" if outcome.reason == "disabled" else "failure")
            await self._record_refusal(outcome, ip)
            raise AuthenticationFailed("Invalid email or password.")
        account_user, new_hash = outcome
        await self.throttle.succeeded(hold)
        if self.require_verified_email and not account_user.email_verified:
            # Told only to whoever knows the password: nobody else learns that the
            # account exists (L7).
            self.metrics.login("refused")
            await record_now(
                self.db, "login.refused", user=account_user.id, ip=ip, reason="email_unverified"
            )
            raise EmailNotVerified(UNVERIFIED)
        # Unstored, a success is an error (503): nobody is signed in unaudited (L25).
        await record_now(self.db, "login.succeeded", user=account_user.id, ip=ip)
        self.metrics.login("success")
        if new_hash:
            # Parameters were raised since this hash was made (E1: rehash on login).
            await anyio.to_thread.run_sync(self._store_rehash, account_user.id, new_hash)
        return account_user

    async def _check_password(
        self, account: str | None, password: str, read: tuple[_Credentials] | None
    ) -> tuple[UserRecord, str | None] | _Refusal:
        if read is not None:
            found = read[0]
        else:
            found = await self.db.users.credentials(account) if account else None
        if found is None:
            await self.hasher.verify_dummy_async(password)
            # user=None: the typed address is no account's and is never stored (L25).
            return _Refusal(None, "unknown_account")
        account_user, password_hash = found
        ok, new_hash = await self.hasher.verify_async(password, password_hash)
        if not ok or not account_user.is_active:
            return _Refusal(account_user.id, "wrong_password" if not ok else "disabled")
        return account_user, new_hash

    async def _record_refusal(self, refusal: _Refusal, ip: str) -> None:
        try:
            await record_now(
                self.db, "login.failed", user=refusal.user_id, ip=ip, reason=refusal.reason
            )
        except Exception as error:
            # The answer is the same refusal whatever the database says, and the
            # throttle has counted it; the log keeps the event the table could not.
            audit(
                "login.failed",
                user=refusal.user_id,
                ip=ip,
                reason=refusal.reason,
                stored=False,
                error=type(error).__name__,
            )

    def _store_rehash(self, user_id: uuid.UUID, new_hash: str) -> None:
        with self.db.unit_of_work() as session:
            UserRepository(session).set_password_hash(user_id, new_hash)

    def get(self, user_id: uuid.UUID) -> UserRecord:
        with self.db.unit_of_work(read_only=True) as session:
            user = UserRepository(session).get(user_id)
            if user is None:
                raise NotFound("No such user.")
            return user_record(user)

    def update_profile(self, user_id: uuid.UUID, changes: ProfileChanges) -> UserRecord:
        """The display name, and the password with the current one. The address
        changes only through services/email_change.py, once the new one proves
        itself (L20)."""
        new_hash: str | None = None
        if changes.new_password is not None:
            self.require_current_password(user_id, changes.current_password)
            new_hash = self.checked_password(changes.new_password, self.get(user_id).email)
        with self.db.unit_of_work() as session:
            users = UserRepository(session)
            user = users.get_for_update(user_id)
            if user is None:
                raise NotFound("No such user.")
            if changes.display_name is not UNSET:
                user.display_name = changes.display_name  # type: ignore[assignment]
            if new_hash is not None:
                self.apply_new_password(session, user, new_hash)
            users.flush_changes()
            return user_record(user)

    def apply_new_password(
        self, uow: UnitOfWork, user: User, new_hash: str, *, ip: str | None = None
    ) -> None:
        """Every route that sets a password goes through here, in its unit of work."""
        user.password_hash = new_hash
        # E7: a password change ends every session and token issued before it.
        revoke_everything(uow, user)
        # E8: and every reset link still in a mailbox.
        discard_resets(uow, user.id)
        record(uow, "password.changed", user=user.id, ip=ip)

    def unusable_password_hash(self) -> str:
        """A hash no password verifies: that of a 256-bit secret nobody is told. A
        sign-in with it fails like a wrong password, in the same time, and only a
        reset link sets a new one (L21). Hash before the unit of work."""
        return self.hasher.hash(new_token(32))

    def require_current_password(self, user_id: uuid.UUID, current: str | None) -> None:
        record = self.get(user_id)
        with self.db.unit_of_work(read_only=True) as session:
            found = UserRepository(session).credentials(record.email)
        if current is None or found is None:
            raise Forbidden("The current password is required for this change.")
        # Called in a worker thread: the throttle's blocking calls hand Redis's
        # round trips to the event loop.
        try:
            hold = self.throttle.check_blocking(current_password_windows(user_id))
        except Throttled:
            self.metrics.throttled("current_password")
            raise
        try:
            ok, _ = self.hasher.verify(current, found[1], self.attempt_seconds)
        except BaseException as error:
            self.throttle.settle_blocking(hold, RELEASED)
            if isinstance(error, TimeoutError):
                self.metrics.throttled("attempts")
                raise ServiceUnavailable(BUSY) from None
            raise
        if not ok:
            self.throttle.settle_blocking(hold, FAILED)
            raise Forbidden("The current password is not correct.")
        self.throttle.settle_blocking(hold, SUCCEEDED)
