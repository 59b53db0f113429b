"""A user's data on request (GET /users/me/export) and the stored audit trail of an
account for an administrator (GET /users/{user_id}/events)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from userservice.api.deps import user_allowed
from userservice.api.schemas import problem_responses
from userservice.errors import InvalidInput
from userservice.records import StoredAuditEvent
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep

router = APIRouter(prefix="/users", tags=["users"])
EXPORT_FILENAME = "userservice-export.json"
# Cursors are the base64 of a positive event id; anything longer is not one.
Cursor = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_-]*$")]


@router.get(
    "/me/export",
    responses={
        200: {
            "description": "Everything stored about your account, as a JSON file.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(401, 403),
    },
    summary="Download your data (GDPR articles 15 and 20)",
)
def export_me(
    principal: Annotated[Principal, Depends(user_allowed("export_me"))], svc: ServicesDep
) -> Response:
    """Your profile, the apps you authorised and their tokens, your browser sessions,
    pending mailed links and mail, and the security events about your account: the
    user in person or a first-party client only. No secret or digest is in it (L26);
    the middleware marks it `Cache-Control: no-store` (S9)."""
    body = json.dumps(svc.privacy.export(principal.user.id), ensure_ascii=False, indent=2)
    return Response(
        body.encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"'},
    )


class AuditEventOut(BaseModel):
    """A stored security event: never a secret, a digest or an email address (L25)."""

    id: int
    occurred_at: dt.datetime
    event: str
    user_id: uuid.UUID | None = Field(description="The account the event is about.")
    actor_id: uuid.UUID | None = Field(description="Who else acted (an administrator).")
    client_id: str | None
    ip: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, event: StoredAuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            occurred_at=event.occurred_at,
            event=event.event,
            user_id=event.user_id,
            actor_id=event.actor_id,
            client_id=event.client_id,
            ip=event.ip,
            details=event.details,
        )


class AuditEventPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next (older) page; null on the last page."
    )


def _encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(str(event_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("The cursor is not valid.") from None
    # Digits only (int() would take "+1", " 1" or "1_0"), within a BIGINT.
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidInput("The cursor is not valid.")
    return int(text)


@router.get(
    "/{user_id}/events",
    response_model=AuditEventPage,
    responses=problem_responses(400, 401, 403, 422),
    summary="Admin: the security events about an account, newest first",
)
def list_user_events(
    user_id: uuid.UUID,
    _admin: Annotated[Principal, Depends(user_allowed("list_user_events"))],
    svc: ServicesDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditEventPage:
    """The stored audit trail of one account (L25), keyset-paginated by
    `next_cursor`. An id with no events (a deleted account's pseudonym once its
    events are pruned, or an unknown one) gives an empty list."""
    events = svc.audit_log.page(user_id, after=_decode_cursor(cursor), limit=limit + 1)
    page, more = events[:limit], len(events) > limit
    return AuditEventPage(
        items=[AuditEventOut.of(event) for event in page],
        next_cursor=_encode_cursor(page[-1].id) if more else None,
    )
