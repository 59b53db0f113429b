"""The half-login (M6): between a correct password and the second factor.

It grants nothing: no page, token or authorization reads it; only the second
step (a code, or enrolling an app when the policy requires one) does. The browser
holds a random id in a `__Host-` cookie (the web layer sets it), the table its
SHA-256, as for sessions. It lives minutes (settings.half_login_ttl_seconds),
allows MAX_CODE_ATTEMPTS wrong codes and then is gone: the password must be
entered again, and counts in the password's throttle again."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

import anyio

from userservice.db.half_logins import HalfLoginRepository
from userservice.db.ports import Storage
from userservice.db.sessions import SessionRepository
from userservice.errors import InvalidInput
from userservice.records import UserRecord
from userservice.security.secrets import digest, new_token
from userservice.services.audit import record
from userservice.services.client_address import printable_ip

MAX_CODE_ATTEMPTS = 5
STEPS = ("verify", "enrol")
# new_token(32): 43 characters of the URL-safe base64 alphabet.
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class HalfLoginState:
    user: UserRecord
    step: str  # `verify`: a code is due; `enrol`: the policy requires an app first
    auth_time: int  # when the password was checked: the session's auth_time
    next_path: str | None
    attempts: int  # wrong codes so far


def well_formed(raw_id: str | None) -> bool:
    return raw_id is not None and _ID_SHAPE.fullmatch(raw_id) is not None


class HalfLogins:
    def __init__(self, db: Storage, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl_seconds)

    def start(
        self,
        user_id: uuid.UUID,
        step: str,
        auth_time: int,
        next_path: str | None,
        *,
        ip: str | None,
    ) -> str:
        """A fresh random id (256 bits) for the browser's cookie."""
        if step not in STEPS:
            raise InvalidInput(f"not a sign-in step: {step!r}")
        raw_id = new_token(32)
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as uow:
            # As for sessions: a password checked in the same second as a revocation
            # (an app just added, M3) must not fall before its mark and die at once.
            mark = SessionRepository(uow).tokens_valid_after(user_id) or 0
            HalfLoginRepository(uow).add(
                digest(raw_id), user_id, step, max(auth_time, mark), next_path, now, now + self.ttl
            )
            record(uow, "login.half_started", user=user_id, ip=printable_ip(ip), step=step)
        return raw_id

    async def current(self, raw_id: str | None) -> HalfLoginState | None:
        """None when the id is malformed, unknown or expired, or its user was
        disabled, deleted or had everything revoked since the password was checked."""
        if raw_id is None or not well_formed(raw_id):
            return None
        return await anyio.to_thread.run_sync(self._current, digest(raw_id))

    def _current(self, id_digest: str) -> HalfLoginState | None:
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work(read_only=True) as uow:
            found = HalfLoginRepository(uow).find(id_digest, now)
        if found is None:
            return None
        row, user = found
        # E7, L23: a password change, disabling or sign-out-everywhere after the
        # password was checked ends the half-login as it ends sessions.
        if not user.is_active or row.auth_time < user.tokens_valid_after:
            return None
        return HalfLoginState(user, row.step, row.auth_time, row.next_path, row.attempts)

    def failed(self, raw_id: str) -> bool:
        """Count a wrong code; False when that was the last one allowed (the
        half-login is gone) or there was none."""
        if not well_formed(raw_id):
            return False
        id_digest = digest(raw_id)
        with self.db.unit_of_work() as uow:
            halves = HalfLoginRepository(uow)
            attempts = halves.count_failure(id_digest)
            if attempts is None:
                return False
            if attempts >= MAX_CODE_ATTEMPTS:
                halves.delete(id_digest)
                return False
        return True

    def finish(self, raw_id: str) -> bool:
        """Gone: the second step succeeded, or the user cancelled. True when this
        call ended it; False when it was gone already (expired, its last wrong
        code or a parallel correct one in another request): one DELETE decides,
        so one half-login ends in at most one session (M6)."""
        if not well_formed(raw_id):
            return False
        with self.db.unit_of_work() as uow:
            return HalfLoginRepository(uow).delete(digest(raw_id))
