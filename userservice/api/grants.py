"""/users/me/grants: the third-party apps a user let act for them (A9)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from userservice.api.deps import user_allowed
from userservice.api.schemas import problem_responses
from userservice.services.authn import Principal
from userservice.services.consents import GrantView
from userservice.services.scopes import describe
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/users/me/grants", tags=["users"])


class ScopeOut(BaseModel):
    scope: str
    description: str


class GrantOut(BaseModel):
    client_id: str
    client_name: str
    scope: str
    # The same scopes in the words the consent page used.
    scopes: list[ScopeOut]
    granted_at: dt.datetime

    @classmethod
    def of(cls, grant: GrantView) -> GrantOut:
        return cls(
            client_id=grant.client_id,
            client_name=grant.client_name,
            scope=grant.scope,
            scopes=[ScopeOut(scope=s, description=describe(s)) for s in grant.scope.split()],
            granted_at=grant.granted_at,
        )


@router.get("", response_model=list[GrantOut], responses=problem_responses(401, 403))
def list_grants(
    svc: ServicesDep, principal: Annotated[Principal, Depends(user_allowed("list_grants"))]
) -> list[GrantOut]:
    return [GrantOut.of(grant) for grant in svc.consents.list(principal.user.id)]


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
    summary="Withdraw consent; that app's refresh tokens, access tokens and unused "
    "codes stop working",
)
def revoke_grant(
    client_id: str,
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("revoke_grant"))],
) -> Response:
    svc.consents.revoke(principal.user.id, client_id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
