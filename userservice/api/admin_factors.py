"""An administrator's side of second factors (M8, M13): a user's factors seen and
reset (the way back in for someone who lost the phone and the recovery codes), and
the rule who must sign in with one (nobody, administrators, or everyone)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from userservice.api.deps import user_allowed
from userservice.api.factor_schemas import FactorsOut, MfaPolicyBody, RequiredFor
from userservice.api.schemas import problem_responses
from userservice.api.users import NAMED_PATHS
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep, client_ip

# Segments that name something under /users rather than an account: /users/me/factors
# is the caller's own (api/factors.py), and a method it lacks must be its 405, not a
# "me" that is no UUID.
_NOT_IDS = NAMED_PATHS | {"me"}


class _UserFactorsRoute(APIRoute):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and child.get("path_params", {}).get("user_id") in _NOT_IDS:
            return Match.NONE, {}
        return match, child


users_router = APIRouter(
    prefix="/users/{user_id}/factors",
    tags=["admin: second factors"],
    route_class=_UserFactorsRoute,
)
policy_router = APIRouter(prefix="/admin/policies/mfa", tags=["admin: second factors"])


@users_router.get(
    "",
    response_model=FactorsOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="A user's second factors",
)
def list_user_factors(
    user_id: uuid.UUID,
    svc: ServicesDep,
    admin: Annotated[Principal, Depends(user_allowed("list_user_factors"))],
) -> FactorsOut:
    """Whether the user has an authenticator app and how many recovery codes are
    left; never a key or a code."""
    svc.accounts.get(user_id)  # 404 for an unknown id, not an empty summary
    return FactorsOut.of(svc.factors.summary(user_id))


@users_router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Reset a user's second factors",
)
def reset_user_factors(
    user_id: uuid.UUID,
    request: Request,
    svc: ServicesDep,
    admin: Annotated[Principal, Depends(user_allowed("reset_user_factors"))],
) -> Response:
    """Removes the user's authenticator app (a pending one too), passkeys and
    recovery codes, so that the password alone signs them in again (or, where the
    rule requires a factor of them, they set up a new one at the next sign-in). Every session and
    token of the user ends; the user is mailed; the reset is audited with the
    administrator who did it. For someone who lost the phone and the codes: confirm
    who is asking before using it. 404 for an unknown user; needs a login at most
    5 minutes old (401 `insufficient_user_authentication`, RFC 9470)."""
    svc.factors.reset(user_id, actor_id=admin.user.id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@policy_router.get(
    "",
    response_model=MfaPolicyBody,
    responses=problem_responses(401, 403),
    summary="Who must sign in with a second factor",
)
def read_mfa_policy(
    svc: ServicesDep,
    admin: Annotated[Principal, Depends(user_allowed("read_mfa_policy"))],
) -> MfaPolicyBody:
    return MfaPolicyBody(required_for=_known(svc.mfa_policy.required_for()))


@policy_router.put(
    "",
    response_model=MfaPolicyBody,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Set who must sign in with a second factor",
)
def update_mfa_policy(
    body: MfaPolicyBody,
    request: Request,
    svc: ServicesDep,
    admin: Annotated[Principal, Depends(user_allowed("update_mfa_policy"))],
) -> MfaPolicyBody:
    """`admins`: every administrator needs a second factor (an authenticator app or
    a passkey); `all`: every user does. Each one it covers who has none is signed
    out at once (every session and token, the caller's own included) and asked to
    set one up at the next sign-in, before anything else. The password grant and
    HTTP Basic never carry a second factor: they answer 401 `mfa_required` to
    everyone the rule covers, so under `all` they stop for every user and
    first-party frontends must sign in with the authorization code flow and PKCE.
    Needs a login at most 5 minutes old (401 `insufficient_user_authentication`,
    RFC 9470). Audited. Before choosing it, make sure you can still get in:
    `userservice factors reset EMAIL` on the server is the way back for an
    administrator who lost the phone."""
    svc.mfa_policy.set_required_for(
        body.required_for, actor_id=admin.user.id, ip=client_ip(request)
    )
    return MfaPolicyBody(required_for=_known(svc.mfa_policy.required_for()))


def _known(value: str) -> RequiredFor:
    # The service reads an unknown stored value as the strictest rule already.
    if value == "none":
        return "none"
    return "admins" if value == "admins" else "all"
