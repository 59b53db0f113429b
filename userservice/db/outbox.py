"""The mail outbox port, written once for every backend: a mail is added inside the
unit of work of the change that causes it, and senders claim, deliver and settle
rows with one statement each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import cast

from sqlalchemy import (
    Integer,
    Table,
    Text,
    bindparam,
    event,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from userservice.db.models import OutboxMail
from userservice.db.statement import Runner, Statement
from userservice.records import ClaimedMail, QueuedMail

_MAIL = cast(Table, OutboxMail.__table__)
_C = _MAIL.c
_MOMENT = _C.next_attempt_at.type
# Inline constants: a hot statement is run with exactly the parameters it names.
_ONE: ColumnClause[int] = literal_column("1", Integer)

_pending = (
    select(_C.id)
    .where(
        _C.sent_at.is_(None),
        _C.failed_at.is_(None),
        _C.next_attempt_at <= bindparam("now", type_=_MOMENT),
        or_(_C.claimed_until.is_(None), _C.claimed_until < bindparam("now", type_=_MOMENT)),
    )
    .order_by(_C.id)
    .limit(bindparam("limit"))
    # PostgreSQL: senders of other workers and replicas skip the rows this claim is
    # taking instead of waiting for them, then re-check the lease and see it taken.
    # SQLite renders no FOR UPDATE; its writers take turns, so the claim is atomic.
    .with_for_update(skip_locked=True)
)
# The lease and the attempt count in one statement: a claim that commits owns its
# rows until `lease`; a sender that dies holding them loses them when it runs out.
_CLAIM = Statement(
    update(_MAIL)
    .where(_C.id.in_(_pending.scalar_subquery()))
    .values(claimed_until=bindparam("lease", type_=_MOMENT), attempts=_C.attempts + _ONE)
    .returning(_C.id, _C.message_id, _C.recipient, _C.kind, _C.content, _C.attempts)
)
# A settled mail's links are still live credentials for a while (a reset link
# for half an hour): the row keeps who, what kind and the outcome, and erases the
# message, so a backup or a replica of the database shows no link (L12).
_ERASED: ColumnClause[str] = literal_column("''", Text)
# Sent is sent, whoever holds the lease now: record it even if the lease ran out.
_DELIVERED = Statement(
    update(_MAIL)
    .where(_C.id == bindparam("id"), _C.sent_at.is_(None))
    .values(sent_at=bindparam("now", type_=_MOMENT), claimed_until=null(), content=_ERASED)
)
# The other outcomes apply only while the attempt is still the row's latest: a
# sender whose lease ran out must not reschedule a row another sender now holds.
_still_ours = (_C.id == bindparam("id"), _C.attempts == bindparam("attempt"), _C.sent_at.is_(None))
_RETRY = Statement(
    update(_MAIL)
    .where(*_still_ours)
    .values(
        next_attempt_at=bindparam("at", type_=_MOMENT),
        claimed_until=null(),
        last_error=bindparam("error"),
    )
)
_FAILED = Statement(
    update(_MAIL)
    .where(*_still_ours)
    .values(
        failed_at=bindparam("now", type_=_MOMENT),
        claimed_until=null(),
        last_error=bindparam("error"),
        content=_ERASED,
    )
)
# Before each mail of its batch a sender extends that mail's lease, and keeps
# extending it while the mail is in hand: a slow server must not let the lease
# run out, or another sender claims the mail and sends it a second time (L11).
# A lease that has run out is not revived, even if nobody has claimed the row yet.
_RENEW = Statement(
    update(_MAIL)
    .where(*_still_ours, _C.failed_at.is_(None), _C.claimed_until > bindparam("now", type_=_MOMENT))
    .values(claimed_until=bindparam("lease", type_=_MOMENT))
    .returning(_C.id)
)
# A sender that stops before trying a claimed row gives it back untried.
_RELEASE = Statement(
    update(_MAIL).where(*_still_ours).values(claimed_until=null(), attempts=_C.attempts - _ONE)
)
ERROR_LENGTH = 500


class Outbox:
    """The outbox port (db/ports.py OutboxStore) over a backend's statements."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    def add(
        self, uow: Session, mail: QueuedMail, *, after_commit: Callable[[], None] | None = None
    ) -> None:
        """Queue inside the caller's unit of work: committed or rolled back with the
        change that causes it. `after_commit` runs once that commit has happened."""
        uow.add(
            OutboxMail(
                message_id=mail.message_id,
                user_id=mail.user_id,
                recipient=mail.recipient,
                kind=mail.kind,
                content=mail.content,
                created_at=mail.created_at,
                next_attempt_at=mail.created_at,
                attempts=0,
            )
        )
        if after_commit is not None:
            event.listen(uow, "after_commit", lambda _session: after_commit(), once=True)

    async def claim(self, now: dt.datetime, lease: dt.datetime, limit: int) -> list[ClaimedMail]:
        rows = await self._db.write(_CLAIM, {"now": now, "lease": lease, "limit": limit})
        return sorted((ClaimedMail(*row) for row in rows), key=lambda mail: mail.id)

    async def renew(self, mail: ClaimedMail, now: dt.datetime, lease: dt.datetime) -> bool:
        """Extend the lease to `lease`; False if this claim no longer holds the row."""
        params = {"id": mail.id, "attempt": mail.attempt, "now": now, "lease": lease}
        return bool(await self._db.write(_RENEW, params))

    async def delivered(self, mail: ClaimedMail, now: dt.datetime) -> None:
        await self._db.write(_DELIVERED, {"id": mail.id, "now": now})

    async def retry(self, mail: ClaimedMail, at: dt.datetime, error: str) -> None:
        params = {"id": mail.id, "attempt": mail.attempt, "at": at, "error": error[:ERROR_LENGTH]}
        await self._db.write(_RETRY, params)

    async def failed(self, mail: ClaimedMail, now: dt.datetime, error: str) -> None:
        params = {"id": mail.id, "attempt": mail.attempt, "now": now, "error": error[:ERROR_LENGTH]}
        await self._db.write(_FAILED, params)

    async def release(self, mail: ClaimedMail) -> None:
        await self._db.write(_RELEASE, {"id": mail.id, "attempt": mail.attempt})
