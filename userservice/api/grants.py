"""/users/me/grants: the third-party apps a user let act for them (A9)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from userservice.api.deps import user_allowed
from userservice.api.schemas import Problem
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep

router = APIRouter(prefix="/users/me/grants", tags=["users"])
_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}


class GrantOut(BaseModel):
    client_id: str
    client_name: str
    scope: str
    granted_at: dt.datetime


@router.get("", response_model=list[GrantOut], responses={401: _PROBLEM})
def list_grants(
    svc: ServicesDep, principal: Annotated[Principal, Depends(user_allowed("list_grants"))]
) -> list[GrantOut]:
    return [
        GrantOut(
            client_id=g.client_id, client_name=g.client_name, scope=g.scope, granted_at=g.granted_at
        )
        for g in svc.consents.list(principal.user.id)
    ]


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: _PROBLEM, 404: _PROBLEM},
    summary="Withdraw consent; that app's refresh tokens stop working",
)
def revoke_grant(
    client_id: str,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("revoke_grant"))],
) -> Response:
    svc.consents.revoke(principal.user.id, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
