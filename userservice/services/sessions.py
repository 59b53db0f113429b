"""Server-side browser sessions for the hosted pages (login, consent, account).

The cookie carries a random id; the database holds only its SHA-256, so a leaked
table signs nobody in. Timeouts follow OWASP ASVS V3.3 (idle and absolute). The
account page names and ends sessions by a separate random handle, never by the id
or its digest (L22).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from enum import Enum

import anyio

from userservice.db.codec import utc
from userservice.db.ports import Storage
from userservice.db.sessions import SessionRepository
from userservice.db.users import UserRepository
from userservice.errors import NotFound
from userservice.records import UserRecord
from userservice.security.secrets import digest, new_token
from userservice.services.accounts import revoke_everything
from userservice.services.assurance import PASSWORD_ONLY, loaded_amr, stored_amr
from userservice.services.audit import record
from userservice.services.device_names import DeviceName, device_name

# Writing last_seen_at on every page view would turn each read into a write; a
# minute of slack on a 30-minute idle timeout is harmless.
TOUCH_INTERVAL = dt.timedelta(seconds=60)
# new_token(32) gives 43 URL-safe characters; anything else is not one of ours and
# is refused before it reaches the database.
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# new_token(16): 22 characters (128 bits), within the column's 32.
_HANDLE_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,32}")
MAX_USER_AGENT = 512
MAX_IP = 64


@dataclass(frozen=True, slots=True)
class BrowserSession:
    user: UserRecord
    auth_time: int
    # How this login was made (RFC 8176), passed on to codes and tokens (M5).
    amr: tuple[str, ...] = PASSWORD_ONLY


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A live session as its user sees it: nothing in it opens the session (L22)."""

    handle: str
    device: DeviceName
    user_agent: str | None
    ip: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    current: bool


class _Follow(Enum):
    NOTHING = 0
    TOUCH = 1
    DELETE = 2


def well_formed(raw_id: str | None) -> bool:
    return raw_id is not None and _ID_SHAPE.fullmatch(raw_id) is not None


def _printable(text: str | None, limit: int) -> str | None:
    # Client-supplied: control characters would forge lines wherever it is shown
    # or logged; the length is the column's.
    if not text:
        return None
    kept = "".join(c for c in text if c.isprintable())
    return kept[:limit] or None


class SessionService:
    def __init__(self, db: Storage, idle_ttl: int, absolute_ttl: int) -> None:
        self.db = db
        self.idle_ttl = dt.timedelta(seconds=idle_ttl)
        self.absolute_ttl = dt.timedelta(seconds=absolute_ttl)

    def start(
        self,
        user_id: uuid.UUID,
        auth_time: int,
        *,
        user_agent: str | None = None,
        ip: str | None = None,
        amr: tuple[str, ...] = PASSWORD_ONLY,
    ) -> str:
        """A fresh random id at every login (session fixation, OWASP ASVS V3.2.1);
        `amr` says how the login was proven (RFC 8176, M5)."""
        raw_id = new_token(32)  # 256 bits from the OS CSPRNG
        now = dt.datetime.now(dt.UTC)
        address = _printable(ip, MAX_IP)
        with self.db.unit_of_work() as session:
            sessions = SessionRepository(session)
            mark = sessions.tokens_valid_after(user_id) or 0
            sessions.delete_stale_for_user(user_id, now, now - self.idle_ttl)
            # A login in the same second as a password change must not fall before
            # the revocation mark (the same rule as access tokens' iat).
            sessions.add(
                digest(raw_id),
                user_id,
                max(auth_time, mark),
                now,
                now + self.absolute_ttl,
                handle=new_token(16),
                user_agent=_printable(user_agent, MAX_USER_AGENT),
                ip=address,
                amr=stored_amr(amr),
            )
            record(session, "session.started", user=user_id, ip=address)
        return raw_id

    def active(self, user_id: uuid.UUID, current_raw_id: str | None = None) -> list[ActiveSession]:
        """The user's live sessions, newest first; `current_raw_id` (the caller's
        own cookie) marks the one it names."""
        now = dt.datetime.now(dt.UTC)
        current = digest(current_raw_id) if current_raw_id and well_formed(current_raw_id) else None
        with self.db.unit_of_work(read_only=True) as session:
            rows = SessionRepository(session).live_for_user(user_id, now, now - self.idle_ttl)
            return [
                ActiveSession(
                    handle=row.handle or "",
                    device=device_name(row.user_agent),
                    user_agent=row.user_agent,
                    ip=row.ip,
                    created_at=utc(row.created_at),
                    last_seen_at=utc(row.last_seen_at),
                    expires_at=utc(row.expires_at),
                    current=row.id_digest == current,
                )
                for row in rows
            ]

    def end_by_handle(self, user_id: uuid.UUID, handle: str, *, ip: str | None = None) -> None:
        """End one of the user's own sessions; NotFound for any other handle, the
        same for another user's as for none (L22)."""
        if _HANDLE_SHAPE.fullmatch(handle) is None:
            raise NotFound("No such session.")
        with self.db.unit_of_work() as session:
            if not SessionRepository(session).delete_by_handle(user_id, handle):
                raise NotFound("No such session.")
            record(session, "session.ended", user=user_id, ip=_printable(ip, MAX_IP), how="ended")

    def end_everywhere(self, user_id: uuid.UUID, *, ip: str | None = None) -> None:
        """Sign out everywhere (L23): every browser session, refresh token and
        access token of the user ends in one transaction. Access tokens are JWTs
        checked against the user's revocation mark on every request, so every
        worker process refuses them from the commit on."""
        with self.db.unit_of_work() as session:
            user = UserRepository(session).get_for_update(user_id)
            if user is None:
                raise NotFound("No such user.")
            ended = SessionRepository(session).delete_all_for_user(user_id)
            revoke_everything(session, user)
            record(
                session,
                "sessions.ended_all",
                user=user_id,
                ip=_printable(ip, MAX_IP),
                sessions=ended,
            )

    async def current(self, raw_id: str | None) -> BrowserSession | None:
        """The live session `raw_id` names, or None. Never blocks the event loop on
        a network database; the occasional write (touch, or deleting a dead
        session) runs in a worker thread (an SQLite writer may wait on busy_timeout)."""
        if not well_formed(raw_id):
            return None
        found, follow, id_digest = await self._inspect(raw_id)
        if follow is not _Follow.NOTHING:
            await anyio.to_thread.run_sync(self._follow_up, follow, id_digest)
        return found

    def end(self, raw_id: str | None, *, ip: str | None = None, how: str = "signed_out") -> None:
        """End the session this browser holds (sign-out, or the id it had before a
        new login, F2)."""
        if not well_formed(raw_id):
            return
        assert raw_id is not None
        with self.db.unit_of_work() as session:
            owner = SessionRepository(session).delete(digest(raw_id))
            if owner is not None:
                record(session, "session.ended", user=owner, ip=_printable(ip, MAX_IP), how=how)

    async def _inspect(self, raw_id: str | None) -> tuple[BrowserSession | None, _Follow, str]:
        if raw_id is None or not well_formed(raw_id):
            return None, _Follow.NOTHING, ""
        id_digest = digest(raw_id)
        state = await self.db.sessions.find(id_digest)
        if state is None:
            return None, _Follow.NOTHING, id_digest
        user, auth_time, last_seen_at, expires_at = (
            state.user,
            state.auth_time,
            state.last_seen_at,
            state.expires_at,
        )
        now = dt.datetime.now(dt.UTC)
        if now >= expires_at or now - last_seen_at > self.idle_ttl:
            return None, _Follow.DELETE, id_digest
        if not user.is_active or auth_time < user.tokens_valid_after:
            # Disabled, or the password changed after this login (E7): the session
            # dies with the user's tokens.
            return None, _Follow.DELETE, id_digest
        follow = _Follow.TOUCH if now - last_seen_at >= TOUCH_INTERVAL else _Follow.NOTHING
        return BrowserSession(user, auth_time, loaded_amr(state.amr)), follow, id_digest

    def _follow_up(self, follow: _Follow, id_digest: str) -> None:
        if follow is _Follow.NOTHING:
            return
        with self.db.unit_of_work() as session:
            repo = SessionRepository(session)
            if follow is _Follow.TOUCH:
                repo.touch(id_digest, dt.datetime.now(dt.UTC))
            else:
                repo.delete(id_digest)
