"""Accounts: registration, credentials, profile changes, administration."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from userservice.db.models import User
from userservice.db.policy_switch import revoke
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.users import (
    UserRepository,
    user_record,
)
from userservice.errors import (
    Forbidden,
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
from userservice.security.throttle import LoginThrottle
from userservice.services.account_tokens import discard_resets
from userservice.services.audit import record
from userservice.services.devices import DeviceCookies
from userservice.services.emails import normalize_email
from userservice.services.login_limits import current_password_windows
from userservice.services.sign_in import BUSY, PasswordSignIn

UNSET = object()
# Run inside registration's unit of work with the new account (a mail to queue).
AfterRegister = Callable[[UnitOfWork, UserRecord], None]


@dataclass(frozen=True)
class ProfileChanges:
    display_name: str | object | None = UNSET
    new_password: str | None = None
    current_password: str | None = None


def revocation_mark() -> int:
    # Tokens carry whole-second `iat`s; a mark at the next second refuses every
    # token issued up to now, and new tokens are stamped iat >= mark (tokens.py).
    return math.floor(time.time()) + 1


def revoke_everything(uow: UnitOfWork, user: User) -> None:
    """End every access token, refresh token, browser session and unredeemed
    authorization code issued to the user so far, in the caller's unit of work
    (password set, account disabled, sign out everywhere, address change undone)."""
    # The same statements as for many accounts at once (a switch of the sign-in
    # rule): the mark strictly above the previous one, the codes before the
    # refresh families (L3, L23), in one place.
    revoke(uow, User.id == user.id, mark=revocation_mark(), now=dt.datetime.now(dt.UTC))
    # Changed under the loaded account: read anew on use.
    uow.expire(user, ["tokens_valid_after", "updated_at"])


class AccountService(PasswordSignIn):
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
