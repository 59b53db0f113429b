"""The audit trail's table: security events stored as well as logged."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from userservice.db.codec import utc
from userservice.db.models import AuditEvent, User
from userservice.db.statement import Runner, Statement
from userservice.records import AuditEntry, StoredAuditEvent

_EVENTS = cast(Table, AuditEvent.__table__)
_VALUES = {
    name: bindparam(name, type_=_EVENTS.c[name].type)
    for name in ("occurred_at", "event", "user_id", "actor_id", "client_id", "ip", "details")
}
_ADD = Statement(insert(_EVENTS).values(**_VALUES))
# L27: an event settled after its account was erased (a login whose password check
# raced the erasure) must not name the account again once its trail is
# pseudonymised. The row goes in only while the account exists; on PostgreSQL the
# key-share lock waits for an erasure holding the row, then finds it gone.
_ADD_WHILE_USER_EXISTS = Statement(
    insert(_EVENTS).from_select(
        list(_VALUES),
        select(*_VALUES.values()).where(
            select(User.id)
            .where(User.id == _VALUES["user_id"])
            .with_for_update(read=True, key_share=True)
            .exists()
        ),
    )
)


def _params(entry: AuditEntry, now: dt.datetime) -> dict[str, Any]:
    return {
        "occurred_at": now,
        "event": entry.event,
        "user_id": entry.user_id,
        "actor_id": entry.actor_id,
        "client_id": entry.client_id,
        "ip": entry.ip,
        "details": json.dumps(dict(entry.details), sort_keys=True, ensure_ascii=False),
    }


class AuditWrites:
    """The audit port's write for events outside a unit of work (a login attempt on
    the event loop): one statement, joining the SQLite group commit or autocommitted
    on PostgreSQL."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        statement = _ADD if entry.user_id is None else _ADD_WHILE_USER_EXISTS
        await self._db.write(statement, _params(entry, dt.datetime.now(dt.UTC)))


def add_event(session: Session, entry: AuditEntry) -> None:
    """The same, inside the unit of work of the change the event records: both
    commit, or neither does."""
    session.execute(_ADD.sql, _params(entry, dt.datetime.now(dt.UTC)))


def add_events(session: Session, entries: list[AuditEntry]) -> None:
    """Several events in one executemany, in the change's unit of work: a switch of
    the sign-in rule records one per account it signs out (M13)."""
    if entries:
        now = dt.datetime.now(dt.UTC)
        session.execute(_ADD.sql, [_params(entry, now) for entry in entries])


def _entry_of(row: AuditEvent) -> StoredAuditEvent:
    details = json.loads(row.details or "{}")
    return StoredAuditEvent(
        row.id,
        utc(row.occurred_at),
        row.event,
        row.user_id,
        row.actor_id,
        row.client_id,
        row.ip,
        details if isinstance(details, dict) else {},
    )


def events_about(
    session: Session, user_id: uuid.UUID, *, after: int | None, limit: int
) -> list[StoredAuditEvent]:
    """The events about one account, newest first, keyset-paged by id (O(limit) at
    any depth through ix_audit_events_user_id_id): those with an id below `after`."""
    query = select(AuditEvent).where(AuditEvent.user_id == user_id)
    if after is not None:
        query = query.where(AuditEvent.id < after)
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    return [_entry_of(row) for row in rows]


def pseudonymise(session: Session, user_id: uuid.UUID, pseudonym: uuid.UUID) -> None:
    """The account's trail kept under a random id no other table knows, with the
    client addresses it recorded gone: events about it and events it caused as an
    administrator alike (L27)."""
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.user_id == user_id)
        .values(user_id=pseudonym, ip=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.actor_id == user_id)
        .values(actor_id=pseudonym, ip=None)
        .execution_options(synchronize_session=False)
    )
