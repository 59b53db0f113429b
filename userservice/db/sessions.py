"""Browser-session repository: the only SQL of the hosted pages' sessions."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from userservice.db.models import BrowserSession, User
from userservice.db.statement import Runner, Statement
from userservice.db.users import _RECORD_COLUMNS
from userservice.records import SessionState, UserRecord

# Prebuilt Core statement: every page view (and every /oauth/authorize call) reads
# the session and its user in one round trip, without an ORM Session.
_SESSION_AND_USER = (
    select(
        *_RECORD_COLUMNS,
        BrowserSession.auth_time,
        BrowserSession.last_seen_at,
        BrowserSession.expires_at,
        BrowserSession.amr,
    )
    .join(User, User.id == BrowserSession.user_id)
    .where(BrowserSession.id_digest == bindparam("id_digest"))
)


_LOOKUP = Statement(_SESSION_AND_USER)


class SessionReads:
    """The sessions port's hot read, written once for every backend."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def find(self, id_digest: str) -> SessionState | None:
        """None for an unknown id, or a session whose user was deleted (the row
        went with it, ON DELETE CASCADE)."""
        row = await self._db.fetch_one(_LOOKUP, {"id_digest": id_digest})
        if row is None:
            return None
        return SessionState(UserRecord(*row[:9]), int(row[9]), row[10], row[11], row[12])


class SessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        id_digest: str,
        user_id: uuid.UUID,
        auth_time: int,
        now: dt.datetime,
        expires_at: dt.datetime,
        *,
        handle: str,
        user_agent: str | None = None,
        ip: str | None = None,
        amr: str | None = None,
    ) -> None:
        self.session.add(
            BrowserSession(
                id_digest=id_digest,
                user_id=user_id,
                auth_time=auth_time,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                handle=handle,
                user_agent=user_agent,
                ip=ip,
                amr=amr,
            )
        )
        self.session.flush()

    def tokens_valid_after(self, user_id: uuid.UUID) -> int | None:
        value = self.session.scalar(select(User.tokens_valid_after).where(User.id == user_id))
        return None if value is None else int(value)

    def live_for_user(
        self, user_id: uuid.UUID, now: dt.datetime, idle_before: dt.datetime
    ) -> list[BrowserSession]:
        """The user's sessions that would still open a page: within both timeouts
        and not from before the user's revocation mark (the rules of
        services/sessions.py's lookup, as one query), newest first."""
        query = (
            select(BrowserSession)
            .join(User, User.id == BrowserSession.user_id)
            .where(
                BrowserSession.user_id == user_id,
                BrowserSession.handle.is_not(None),
                BrowserSession.expires_at > now,
                BrowserSession.last_seen_at >= idle_before,
                BrowserSession.auth_time >= User.tokens_valid_after,
            )
            .order_by(BrowserSession.created_at.desc(), BrowserSession.handle)
        )
        return list(self.session.scalars(query))

    def touch(self, id_digest: str, now: dt.datetime) -> None:
        self.session.execute(
            update(BrowserSession)
            .where(BrowserSession.id_digest == id_digest)
            .values(last_seen_at=now)
        )

    def delete(self, id_digest: str) -> uuid.UUID | None:
        """Delete the session; its user's id, or None when there was none."""
        owner = self.session.scalar(
            select(BrowserSession.user_id).where(BrowserSession.id_digest == id_digest)
        )
        if owner is None:
            return None
        result = self.session.execute(
            delete(BrowserSession).where(BrowserSession.id_digest == id_digest)
        )
        return owner if getattr(result, "rowcount", 0) else None

    def delete_by_handle(self, user_id: uuid.UUID, handle: str) -> bool:
        # Both columns in the WHERE: a handle of another user's session ends nothing
        # and answers like an unknown one (L22).
        result = self.session.execute(
            delete(BrowserSession).where(
                BrowserSession.user_id == user_id, BrowserSession.handle == handle
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def delete_all_for_user(self, user_id: uuid.UUID) -> int:
        result = self.session.execute(
            delete(BrowserSession).where(BrowserSession.user_id == user_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_stale_for_user(
        self, user_id: uuid.UUID, now: dt.datetime, idle_before: dt.datetime
    ) -> None:
        # Housekeeping at login keeps the table from growing with abandoned sessions.
        self.session.execute(
            delete(BrowserSession).where(
                BrowserSession.user_id == user_id,
                or_(BrowserSession.expires_at <= now, BrowserSession.last_seen_at < idle_before),
            )
        )
