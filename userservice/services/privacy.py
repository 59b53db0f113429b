"""A user's data: all of it handed over on request (GDPR art. 15, 20), and erased
everywhere with the account (art. 17). docs/privacy.md describes both."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from userservice.db import personal_data
from userservice.db.codec import utc
from userservice.db.ports import Storage
from userservice.errors import NotFound
from userservice.records import StoredAuditEvent
from userservice.services.audit import record
from userservice.services.device_names import device_name
from userservice.services.email_change import VERIFY_MAIL

EXPORT_FORMAT = "userservice-export"
EXPORT_VERSION = 1
# Mail whose presence would tell the person something the answer to their request
# did not: the mail proving a new address goes only to a free one, so it would say
# whether an address asked for has an account (L20). The request itself is in
# `links` whatever the address.
UNEXPORTED_MAIL = frozenset({VERIFY_MAIL})


def _value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return utc(value).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _value(value) for key, value in row.items()}


def _moment(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _event(user_id: uuid.UUID, event: StoredAuditEvent) -> dict[str, Any]:
    by_self = event.actor_id in (None, user_id)
    # An administrator who acted is named by role only: their id and the address
    # they acted from are their own personal data, not this person's.
    return {
        "occurred_at": _value(event.occurred_at),
        "event": event.event,
        "by": "self" if by_self else "administrator",
        "client_id": event.client_id,
        "ip": event.ip if by_self else None,
        "details": event.details,
    }


def _session(row: dict[str, Any]) -> dict[str, Any]:
    return {"device": str(device_name(row["user_agent"])), **_json(row)}


class Privacy:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def export(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Everything stored about the account, JSON-ready, read in one transaction
        so the categories agree with each other (L26)."""
        with self.db.unit_of_work(read_only=True) as uow:
            data = personal_data.personal_data(uow, user_id)
        if data is None:
            raise NotFound("No such user.")
        withdrawn = [
            {"client_id": row["client_id"], "withdrawn_at": _moment(row["withdrawn_at"])}
            for row in data.withdrawn_apps
        ]
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "profile": _json(data.profile),
            "apps": [_json(row) for row in data.apps],
            "withdrawn_apps": withdrawn,
            "sessions": [_session(row) for row in data.sessions],
            "tokens": [_json(row) for row in data.refresh_tokens],
            "authorization_codes": [_json(row) for row in data.authorization_codes],
            "links": [_json(row) for row in data.links],
            "mail": [_json(row) for row in data.mail if row["kind"] not in UNEXPORTED_MAIL],
            "factors": [_json(row) for row in data.factors],
            "events": [_event(user_id, event) for event in reversed(data.events)],
        }

    def erase(self, user_id: uuid.UUID, *, actor_id: uuid.UUID | None, ip: str | None) -> None:
        """Delete the account and its personal data from every table in one unit of
        work; the audit trail stays under a random pseudonym, without addresses, and
        a `user.deleted` tombstone is added to it (L27). Access tokens die with the
        account: their subject no longer resolves."""
        pseudonym = uuid.uuid4()
        by_admin = actor_id is not None and actor_id != user_id
        with self.db.unit_of_work() as uow:
            if not personal_data.erase(uow, user_id, pseudonym):
                raise NotFound("No such user.")
            if by_admin:
                # The administrator's own id and address: the trail must say who did it.
                record(
                    uow, "user.deleted", user=pseudonym, actor=actor_id, ip=ip, deleted_by="admin"
                )
            elif actor_id is None:
                record(uow, "user.deleted", user=pseudonym, deleted_by="operator")
            else:
                record(uow, "user.deleted", user=pseudonym, actor=pseudonym, deleted_by="self")
