"""Signing in with a password: the throttled attempt (its windows held until it
is settled, security/throttle.py), the indistinguishable refusal (L25), the
verified-address rule (L7) and the rehash on success (E1). Part of
AccountService (services/accounts.py), kept apart so that each file stays
readable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import anyio

from userservice.db.ports import Storage
from userservice.db.users import UserRepository
from userservice.errors import (
    AuthenticationFailed,
    EmailNotVerified,
    InvalidInput,
    SecondFactorRequired,
    ServiceUnavailable,
)
from userservice.observability.metrics import NoMetrics
from userservice.records import UserRecord
from userservice.security.passwords import PasswordHasher
from userservice.security.throttle import LoginThrottle, LoginThrottled
from userservice.services.audit import audit, record_now
from userservice.services.devices import DeviceCookies
from userservice.services.emails import normalize_email
from userservice.services.login_limits import BrowserLogin, login_windows
from userservice.services.mfa_rule import applies, effective

# The credentials row and hash; None: no such account.
_Credentials = tuple[UserRecord, str] | None
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


class PasswordSignIn:
    """The sign-in half of AccountService, which sets these attributes."""

    db: Storage
    hasher: PasswordHasher
    throttle: LoginThrottle
    devices: DeviceCookies
    require_verified_email: bool
    attempt_seconds: float
    metrics: NoMetrics

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
        if new_hash:
            # Parameters were raised since this hash was made (E1: rehash on login).
            await anyio.to_thread.run_sync(self._store_rehash, account_user.id, new_hash)
        # Only now, after a correct password: a wrong one costs exactly what it
        # did before second factors existed (E3), and says nothing about them.
        step = await self._second_factor_step(account_user)
        if step is not None:
            # M4, M8: the password alone never signs this account in, by any route.
            await record_now(
                self.db, "login.password_accepted", user=account_user.id, ip=ip, step=step
            )
            self.metrics.login("second_factor")
            raise SecondFactorRequired(account_user.id, step)
        # Unstored, a success is an error (503): nobody is signed in unaudited (L25).
        await record_now(self.db, "login.succeeded", user=account_user.id, ip=ip)
        self.metrics.login("success")
        return account_user

    async def _second_factor_step(self, user: UserRecord) -> str | None:
        """`verify` when the user has a second factor, `enrol` when the sign-in
        rule requires one this user lacks, else None. One read, awaited on the
        event loop like the credentials read."""
        has_factor, policy = await self.db.users.second_factor_state(user.id)
        if has_factor:
            return "verify"
        if applies(effective(policy), is_admin=user.is_admin):
            return "enrol"
        return None

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
