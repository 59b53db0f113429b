"""/users/me/factors/passkeys: the account's passkeys as JSON operations (M9), for
the user in person or a first-party client. Changes need a recent login (RFC 9470
challenge otherwise, M12), end every session and token, and are mailed (M3)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from userservice.api.account_mail import request_locale
from userservice.api.deps import user_allowed
from userservice.api.passkey_schemas import (
    PasskeyOut,
    PasskeyRegistration,
    PasskeyRename,
    PasskeysOut,
    RegisteredPasskey,
)
from userservice.api.problems import NO_STORE
from userservice.api.schemas import problem_responses
from userservice.errors import NotFound
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/users/me/factors/passkeys", tags=["second factors"])

_STEP_UP = (
    "\n\nNeeds a login within the last five minutes (multi-factor once the account has "
    "a second factor): otherwise 401 `insufficient_user_authentication` with "
    '`WWW-Authenticate: Bearer error="insufficient_user_authentication", '
    'acr_values="urn:userservice:acr:mfa", max_age=300` (RFC 9470); sign in again and retry.'
)
_ORIGIN = (
    "\n\n**WebAuthn binds a passkey to the relying party**: its id is the host name of "
    "this service's public URL and the browser's ceremony must run on that origin. "
    "Registering through this API therefore works only for a frontend served from the "
    "service's own origin; any other origin is refused (403 `invalid_passkey`). 409 "
    "`passkeys_unavailable` when the public URL's host is an IP address."
)
_OPTIONS = (
    "The `PublicKeyCredentialCreationOptions` for `navigator.credentials.create()` "
    "(WebAuthn Level 3 JSON form, base64url): a discoverable credential, user "
    "verification preferred, attestation `none`, the account's passkeys excluded. "
    "Its challenge works once and for this account only, within the prompt's time. "
    "403 `email_not_verified` until the address is verified." + _ORIGIN + _STEP_UP
)
_REGISTER = (
    "Stores the passkey the browser made from the options. The answer holds ten "
    "recovery codes when it is the account's first second factor (shown this once)."
    "\n\n**Every session, refresh token and access token of the account then ends, the "
    "caller's own included**: the frontend must sign in again. A notice is mailed."
    "\n\n403 `invalid_passkey` for an answer that does not verify (wrong origin, a "
    "challenge not this account's, expired or used), 409 for a passkey registered "
    "already, 422 for a missing or too long name." + _ORIGIN + _STEP_UP
)
_REMOVE = (
    "Every session, refresh token and access token ends, the caller's own included, "
    "and a notice is mailed; the recovery codes go with the last second factor. 404 "
    "for no such passkey of this account; 409 when the sign-in rule requires a second "
    "factor and this is the last one." + _STEP_UP
)


@router.get(
    "",
    response_model=PasskeysOut,
    responses=problem_responses(401, 403),
    summary="The account's passkeys",
)
def list_passkeys(
    svc: ServicesDep, principal: Annotated[Principal, Depends(user_allowed("list_factors"))]
) -> PasskeysOut:
    """Name, dates and kind of each passkey; never a key or a credential id."""
    views = svc.passkeys.list(principal.user.id)
    return PasskeysOut(passkeys=[PasskeyOut.of(view) for view in views])


@router.post(
    "/options",
    responses={
        200: {
            "description": "PublicKeyCredentialCreationOptionsJSON",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(401, 403, 409),
    },
    summary="Start adding a passkey: the options for navigator.credentials.create()",
    description=_OPTIONS,
)
def passkey_registration_options(
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("passkey_registration_options"))],
) -> Response:
    options = svc.passkeys.registration_options(principal.user.id)
    # A challenge is for one ceremony: no cache may hand it to another.
    return Response(options, media_type="application/json", headers=NO_STORE)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisteredPasskey,
    responses=problem_responses(400, 401, 403, 409, 413, 422),
    summary="Add a passkey",
    description=_REGISTER,
)
def register_passkey(
    body: PasskeyRegistration,
    request: Request,
    response: Response,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("register_passkey"))],
) -> RegisteredPasskey:
    added = svc.passkeys.register(
        principal.user.id,
        json.dumps(body.response),
        body.name,
        ip=client_ip(request),
        locale=request_locale(request),
    )
    # M2: recovery codes are shown this once.
    response.headers.update(NO_STORE)
    # The passkey as stored: a list read again could miss it (a removal meanwhile).
    return RegisteredPasskey(
        **PasskeyOut.of(added.passkey).model_dump(), recovery_codes=added.recovery_codes
    )


@router.patch(
    "/{passkey_id:uuid}",
    response_model=PasskeyOut,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Rename a passkey",
)
def rename_passkey(
    passkey_id: uuid.UUID,
    body: PasskeyRename,
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("rename_passkey"))],
) -> PasskeyOut:
    user_id = principal.user.id
    svc.passkeys.rename(user_id, passkey_id, body.name, ip=client_ip(request))
    for view in svc.passkeys.list(user_id):
        if view.id == passkey_id:
            return PasskeyOut.of(view)
    raise NotFound("No such passkey.")  # removed between the two reads


@router.delete(
    "/{passkey_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Remove a passkey",
    description=_REMOVE,
)
def remove_passkey(
    passkey_id: uuid.UUID,
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("remove_passkey"))],
) -> Response:
    svc.passkeys.remove(
        principal.user.id, passkey_id, ip=client_ip(request), locale=request_locale(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
