"""/users/me/sessions: where the user is signed in on the hosted pages, and ending
those sessions (L22, L23). For the user in person or a first-party client only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel

from userservice.api.deps import user_allowed
from userservice.api.schemas import problem_responses
from userservice.services.authn import Principal
from userservice.services.sessions import ActiveSession
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/users/me/sessions", tags=["users"])
SessionId = Annotated[str, Path(description="A session's `id` from the list.")]


class SessionOut(BaseModel):
    """A browser session; `id` names it for ending, and opens nothing (L22)."""

    id: str
    device: str
    user_agent: str | None
    ip: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime

    @classmethod
    def of(cls, found: ActiveSession) -> SessionOut:
        return cls(
            id=found.handle,
            device=str(found.device),
            user_agent=found.user_agent,
            ip=found.ip,
            created_at=found.created_at,
            last_seen_at=found.last_seen_at,
            expires_at=found.expires_at,
        )


@router.get(
    "",
    response_model=list[SessionOut],
    responses=problem_responses(401, 403),
    summary="The account's live browser sessions, newest first",
)
def list_sessions(
    svc: ServicesDep, principal: Annotated[Principal, Depends(user_allowed("list_sessions"))]
) -> list[SessionOut]:
    return [SessionOut.of(found) for found in svc.sessions.active(principal.user.id)]


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
    summary="Sign one browser session out",
)
def end_session(
    session_id: SessionId,
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("end_session"))],
) -> Response:
    # Another user's session is "not found" like an unknown one (L22).
    svc.sessions.end_by_handle(principal.user.id, session_id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403),
    summary="Sign out everywhere: every session, refresh token and access token, "
    "the caller's own included",
)
def end_all_sessions(
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("end_all_sessions"))],
) -> Response:
    svc.sessions.end_everywhere(principal.user.id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
