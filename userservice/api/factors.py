"""/users/me/factors: the account's second factors as JSON operations, for the user
in person or a first-party client (account management, S2). Every change needs a
login of the last five minutes (RFC 9470: otherwise a 401 challenge with
`error="insufficient_user_authentication"` and `max_age`), so that a token left
behind cannot swap the factor for its own (M3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from userservice.api.account_mail import request_locale
from userservice.api.deps import user_allowed
from userservice.api.factor_schemas import (
    FactorsOut,
    RecoveryCodesOut,
    TotpConfirmation,
    TotpEnrolmentOut,
)
from userservice.api.problems import NO_STORE
from userservice.api.schemas import problem_responses
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/users/me/factors", tags=["second factors"])

_STEP_UP = (
    "\n\nNeeds a login within the last five minutes, with the second factor once the "
    "account has one: otherwise 401 `insufficient_user_authentication` with "
    '`WWW-Authenticate: Bearer error="insufficient_user_authentication", '
    'acr_values="urn:userservice:acr:mfa", max_age=300` (RFC 9470; acr_values only '
    "when the account has a factor); sign in again with them and retry."
)
_START = (
    "A new key, its `otpauth://` URI and the QR code holding it, to scan with an "
    "authenticator app; the app counts only once `POST /users/me/factors/totp/confirm` "
    "gets one of its codes (within 15 minutes). Starting again replaces a key not yet "
    "confirmed. 403 `email_not_verified` until the address is verified (only a proven "
    "address can be told of factor changes), 409 when an app is set up already "
    "(remove it first)." + _STEP_UP
)
_CONFIRM = (
    "The code the app shows now makes it the account's second factor, and the answer "
    "holds ten recovery codes, shown this once: each signs in once in place of a code."
    "\n\n**Every session, refresh token and access token of the account then ends, the "
    "caller's own included**: the frontend must sign in again, now with the second "
    "factor (the password alone no longer signs this account in). A notice is mailed."
    "\n\n403 `invalid_code` for a wrong or used code (wrong codes are counted: 429 with "
    "`Retry-After` past the limit), 404 when no setup was started or it is older than "
    "15 minutes." + _STEP_UP
)
_REMOVE = (
    "Without a passkey left, the account signs in with its password alone again and "
    "its recovery codes go too; with one, the codes stay. Every session, refresh token "
    "and access token ends, the caller's own included, and a notice is mailed. 404 when "
    "no app is set up; 409 when the sign-in rule requires a second factor of this user "
    "(an administrator under `admins`, anyone under `all`) and the app is the last one "
    "(add a passkey first, or another administrator resets it)." + _STEP_UP
)
_REGENERATE = (
    "Ten new codes, shown this once; every earlier code is void from now on. A notice "
    "is mailed. 409 when the account has no second factor (an authenticator app or a "
    "passkey)." + _STEP_UP
)


@router.get(
    "",
    response_model=FactorsOut,
    responses=problem_responses(401, 403),
    summary="The account's second factors",
)
def list_factors(
    svc: ServicesDep, principal: Annotated[Principal, Depends(user_allowed("list_factors"))]
) -> FactorsOut:
    """Whether an authenticator app is set up, since when, and how many recovery
    codes are left. Never a key or a code."""
    return FactorsOut.of(svc.factors.summary(principal.user.id))


@router.post(
    "/totp",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpEnrolmentOut,
    responses=problem_responses(401, 403, 404, 409),
    summary="Start setting up an authenticator app",
    description=_START,
)
def start_totp(
    request: Request,
    response: Response,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("start_totp"))],
) -> TotpEnrolmentOut:
    started = svc.factors.start_totp(principal.user.id, ip=client_ip(request))
    # The key is a credential from now on: no cache may keep it (M1).
    response.headers.update(NO_STORE)
    return TotpEnrolmentOut(secret=started.secret, otpauth_uri=started.uri, qr_svg=started.qr_svg)


@router.post(
    "/totp/confirm",
    response_model=RecoveryCodesOut,
    responses=problem_responses(400, 401, 403, 404, 413, 422, 429),
    summary="Confirm the authenticator app with its first code; get recovery codes",
    description=_CONFIRM,
)
def confirm_totp(
    body: TotpConfirmation,
    request: Request,
    response: Response,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("confirm_totp"))],
) -> RecoveryCodesOut:
    locale = request_locale(request)
    codes = svc.factors.confirm_totp(
        principal.user.id, body.code, ip=client_ip(request), locale=locale
    )
    # M2: shown this once; only digests are kept.
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=codes)


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
    summary="Remove the authenticator app",
    description=_REMOVE,
)
def remove_totp(
    request: Request,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("remove_totp"))],
) -> Response:
    locale = request_locale(request)
    svc.factors.remove_totp(principal.user.id, ip=client_ip(request), locale=locale)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/recovery-codes",
    response_model=RecoveryCodesOut,
    responses=problem_responses(401, 403, 409),
    summary="Make ten new recovery codes; the old ones stop working",
    description=_REGENERATE,
)
def regenerate_recovery_codes(
    request: Request,
    response: Response,
    svc: ServicesDep,
    principal: Annotated[Principal, Depends(user_allowed("regenerate_recovery_codes"))],
) -> RecoveryCodesOut:
    locale = request_locale(request)
    codes = svc.factors.regenerate_recovery_codes(
        principal.user.id, ip=client_ip(request), locale=locale
    )
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=codes)
