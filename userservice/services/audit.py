"""Security audit events (OWASP ASVS V7): who did what, from where, in UTC.

One line per event as `event key=value …`. Values are escaped so that user
input (emails, names) cannot forge extra lines (CR/LF injection into logs);
no secret (password, token, digest) is ever passed here.
"""

from __future__ import annotations

import logging
import uuid

from userservice.db.audit import add_event, add_events
from userservice.db.ports import Storage, UnitOfWork
from userservice.records import AuditEntry

log = logging.getLogger("userservice.audit")


def _clean(value: object) -> str:
    text = str(value)
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return f'"{text}"' if (" " in text or not text) else text


def audit(event: str, **fields: object) -> None:
    if log.isEnabledFor(logging.INFO):
        parts = " ".join(f"{k}={_clean(v)}" for k, v in fields.items() if v is not None)
        # The same fields as keys of their own in JSON logs (json.dumps escapes them).
        log.info("%s %s", event, parts, extra={"fields": {"event": event, **fields}})


def _log_entry(entry: AuditEntry) -> None:
    audit(
        entry.event,
        user=entry.user_id,
        by=entry.actor_id,
        client=entry.client_id,
        ip=entry.ip,
        **entry.details,
    )


def record(
    uow: UnitOfWork,
    event: str,
    *,
    user: uuid.UUID | None,
    actor: uuid.UUID | None = None,
    client: str | None = None,
    ip: str | None = None,
    **details: str | int | bool,
) -> None:
    """A security event stored in the caller's unit of work (it exists only if the
    change it records commits) and logged. `user`: the account it is about;
    `actor`: whoever else acted (an administrator). `details` must hold no secret,
    digest or email address (see records.AuditEntry)."""
    entry = AuditEntry(event, user, actor, client, ip, details)
    add_event(uow, entry)
    _log_entry(entry)


def record_all(uow: UnitOfWork, entries: list[AuditEntry]) -> None:
    """`record` for many events at once (one statement): stored with the change
    they record, then logged one line each."""
    add_events(uow, entries)
    for entry in entries:
        _log_entry(entry)


async def record_now(
    db: Storage,
    event: str,
    *,
    user: uuid.UUID | None,
    actor: uuid.UUID | None = None,
    client: str | None = None,
    ip: str | None = None,
    **details: str | int | bool,
) -> None:
    """The same for an event with no unit of work of its own (a login attempt):
    committed by itself, on the event loop without a thread hop."""
    entry = AuditEntry(event, user, actor, client, ip, details)
    await db.audit.add(entry)
    _log_entry(entry)
