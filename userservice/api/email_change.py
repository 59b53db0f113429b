"""Changing the sign-in address as JSON operations: ask with the current password
(the account owner in person or a first-party client), then the mailed links
confirm the new address or undo the change from the old one (L20, L21)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from userservice.api.account_mail import request_locale
from userservice.api.deps import user_allowed
from userservice.api.schemas import EmailChangeLink, EmailChangeRequest, problem_responses
from userservice.security.response_floor import at_floor
from userservice.services.authn import Principal
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(tags=["users"])

_DETAIL = (
    "If the address can be used, a mail with a link to confirm it is on its way to it. "
    "Your address changes once that link is used."
)
# L20: every address gets these bytes, whether another account has it or not.
CHANGE_ACCEPTED = b'{"detail":"' + _DETAIL.encode() + b'"}'
_ACCEPTED_DOC: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted; the same answer whether or not another account has the "
        "address (its owner is told, nothing changes).",
        "content": {"application/json": {"example": {"detail": _DETAIL}}},
    }
}

ChangeEmail = Annotated[Principal, Depends(user_allowed("change_email"))]


@router.post(
    "/users/me/email",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_ACCEPTED_DOC, **problem_responses(400, 401, 403, 409, 413, 422, 429)},
    summary="Change your sign-in address",
)
async def change_email(
    body: EmailChangeRequest, principal: ChangeEmail, request: Request, svc: ServicesDep
) -> Response:
    """Mails a link to the new address; the address changes only once it is used
    (`POST /users/email-change/confirm`). An address another account has gets the
    same answer, in the same time, and its owner a notice. 403 when the current
    password is wrong, 422 for a malformed address or your own, 409 while the undo
    link of an earlier change is still valid. Throttled per address and client.
    An account with a second factor also needs `code` (M7): without it 403
    `second_factor_required`, a wrong or used one 403 `invalid_code` (counted: 429
    past the limit); the password is checked first. Such an account's call must also
    come from a login with the second factor at most five minutes old (else 401
    `insufficient_user_authentication` with `acr_values`, RFC 9470)."""
    user_id, ip, locale = principal.user.id, client_ip(request), request_locale(request)
    await at_floor(
        lambda: svc.email_change.request(
            user_id, body.email, body.current_password, ip=ip, locale=locale, code=body.code
        ),
        what="POST /users/me/email",
    )
    return Response(
        CHANGE_ACCEPTED, status_code=status.HTTP_202_ACCEPTED, media_type="application/json"
    )


@router.post(
    "/users/email-change/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 422),
    summary="Confirm a new sign-in address with the mailed token",
)
def confirm_email_change(body: EmailChangeLink, request: Request, svc: ServicesDep) -> Response:
    """The token of the link mailed to the new address. Single-use; the new address
    becomes the account's, verified, and the old one gets a notice with an undo
    link. 400 `invalid_token` when the token is unknown, used, expired or for
    something else, or the address was taken meanwhile."""
    svc.email_change.confirm(body.token, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/users/email-change/undo",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 422),
    summary="Undo a change of sign-in address with the token mailed to the old address",
)
def undo_email_change(body: EmailChangeLink, request: Request, svc: ServicesDep) -> Response:
    """The token of the link mailed to the previous address. Single-use; the account
    gets that address back, every session and token ends, and the password must
    be set again through the reset link mailed to it. 400 `invalid_token`
    otherwise."""
    locale = request_locale(request)
    svc.email_change.undo(body.token, ip=client_ip(request), locale=locale)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
