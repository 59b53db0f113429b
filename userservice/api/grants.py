"""/users/me/grants: the third-party apps a user let act for them (A9)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from userservice.api.deps import user_allowed
from userservice.api.schemas import Problem
from userservice.services.authn import Principal
from userservice.services.consents import ConsentService

router = APIRouter(prefix="/users/me/grants", tags=["users"])
_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}


class GrantOut(BaseModel):
    client_id: str
    client_name: str
    scope: str
    granted_at: dt.datetime


def _consents(request: Request) -> ConsentService:
    service: ConsentService = request.app.state.consents
    return service


@router.get("", response_model=list[GrantOut], responses={401: _PROBLEM})
def list_grants(
    request: Request, principal: Annotated[Principal, Depends(user_allowed("list_grants"))]
) -> list[GrantOut]:
    return [
        GrantOut(
            client_id=g.client_id, client_name=g.client_name, scope=g.scope, granted_at=g.granted_at
        )
        for g in _consents(request).list(principal.user.id)
    ]


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: _PROBLEM, 404: _PROBLEM},
    summary="Withdraw consent; that app's refresh tokens stop working",
)
def revoke_grant(
    client_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(user_allowed("revoke_grant"))],
) -> Response:
    _consents(request).revoke(principal.user.id, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
