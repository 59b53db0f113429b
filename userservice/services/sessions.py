"""Server-side browser sessions for the hosted pages (login, consent, account).

The cookie carries a random id; the database holds only its SHA-256, so a leaked
table signs nobody in. Timeouts follow OWASP ASVS V3.3 (idle and absolute).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from enum import Enum

import anyio

from userservice.db.ports import Storage
from userservice.db.sessions import SessionRepository
from userservice.records import UserRecord
from userservice.security.secrets import digest, new_token
from userservice.services.audit import audit

# Writing last_seen_at on every page view would turn each read into a write; a
# minute of slack on a 30-minute idle timeout is harmless.
TOUCH_INTERVAL = dt.timedelta(seconds=60)
# new_token(32) gives 43 URL-safe characters; anything else is not one of ours and
# is refused before it reaches the database.
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class BrowserSession:
    user: UserRecord
    auth_time: int


class _Follow(Enum):
    NOTHING = 0
    TOUCH = 1
    DELETE = 2


def well_formed(raw_id: str | None) -> bool:
    return raw_id is not None and _ID_SHAPE.fullmatch(raw_id) is not None


class SessionService:
    def __init__(self, db: Storage, idle_ttl: int, absolute_ttl: int) -> None:
        self.db = db
        self.idle_ttl = dt.timedelta(seconds=idle_ttl)
        self.absolute_ttl = dt.timedelta(seconds=absolute_ttl)

    def start(self, user_id: uuid.UUID, auth_time: int) -> str:
        """A fresh random id at every login (session fixation, OWASP ASVS V3.2.1)."""
        raw_id = new_token(32)  # 256 bits from the OS CSPRNG
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            sessions = SessionRepository(session)
            mark = sessions.tokens_valid_after(user_id) or 0
            sessions.delete_stale_for_user(user_id, now, now - self.idle_ttl)
            # A login in the same second as a password change must not fall before
            # the revocation mark (the same rule as access tokens' iat).
            sessions.add(
                digest(raw_id), user_id, max(auth_time, mark), now, now + self.absolute_ttl
            )
        audit("session.started", user=user_id)
        return raw_id

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

    def end(self, raw_id: str | None) -> None:
        if not well_formed(raw_id):
            return
        assert raw_id is not None
        with self.db.unit_of_work() as session:
            SessionRepository(session).delete(digest(raw_id))

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
        return BrowserSession(user, auth_time), follow, id_digest

    def _follow_up(self, follow: _Follow, id_digest: str) -> None:
        if follow is _Follow.NOTHING:
            return
        with self.db.unit_of_work() as session:
            repo = SessionRepository(session)
            if follow is _Follow.TOUCH:
                repo.touch(id_digest, dt.datetime.now(dt.UTC))
            else:
                repo.delete(id_digest)
