"""The audit trail's table: security events stored as well as logged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.orm import Session

from userservice.db.models import AuditEvent
from userservice.db.statement import Runner, Statement
from userservice.records import AuditEntry

_EVENTS = cast(Table, AuditEvent.__table__)
_ADD = Statement(
    insert(_EVENTS).values(
        occurred_at=bindparam("occurred_at", type_=_EVENTS.c.occurred_at.type),
        event=bindparam("event", type_=_EVENTS.c.event.type),
        user_id=bindparam("user_id", type_=_EVENTS.c.user_id.type),
        actor_id=bindparam("actor_id", type_=_EVENTS.c.actor_id.type),
        client_id=bindparam("client_id", type_=_EVENTS.c.client_id.type),
        ip=bindparam("ip", type_=_EVENTS.c.ip.type),
        details=bindparam("details", type_=_EVENTS.c.details.type),
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
        await self._db.write(_ADD, _params(entry, dt.datetime.now(dt.UTC)))


def add_event(session: Session, entry: AuditEntry) -> None:
    """The same, inside the unit of work of the change the event records: both
    commit, or neither does."""
    session.execute(_ADD.sql, _params(entry, dt.datetime.now(dt.UTC)))
