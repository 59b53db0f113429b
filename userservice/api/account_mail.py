"""/users/verification and /users/password-reset: the mailed-link journeys for
frontends that bring their own pages. Open to anyone; throttled per client and
per address (L5). Asking for a mail is answered 202 for every address, no earlier
than the response floor (L2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ConfigDict, Field

from userservice.api.schemas import Email, Password, Strict, problem_responses
from userservice.i18n import negotiate
from userservice.security.response_floor import at_floor
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(prefix="/users", tags=["users"])

# Any string is taken and judged by the service: a tampered token of any length or
# content gets the same 400 invalid_token as an expired one, never a 422.
# (The body size limit bounds it.)
Token = Annotated[str, Field(description="The `token` query parameter of the mailed link.")]
ACCEPTED = (
    b'{"detail":"If the address belongs to an account that needs this, '
    b'a mail is on its way to it."}'
)
_EXAMPLE_TOKEN = "q3WQm0F2yZ7l0p8t9Xr4cVb6nH1sK5dJ2aE8uY3iO7w"  # noqa: S105 - a documented example


class AddressRequest(Strict):
    email: Email

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ada@example.com"}]}
    )


class VerificationConfirm(Strict):
    token: Token

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": _EXAMPLE_TOKEN}]}
    )


class PasswordResetConfirm(Strict):
    token: Token
    password: Password = Field(description="The new password (the password policy applies).")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"token": _EXAMPLE_TOKEN, "password": "a new long passphrase"}]
        },
    )


_ACCEPTED_DOC: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted; the same answer whether or not the address has an account.",
        "content": {
            "application/json": {
                "example": {
                    "detail": "If the address belongs to an account that needs this, "
                    "a mail is on its way to it."
                }
            }
        },
    }
}


def accepted() -> Response:
    return Response(ACCEPTED, status_code=status.HTTP_202_ACCEPTED, media_type="application/json")


def request_locale(request: Request) -> str:
    """The language of the mail a request causes, for an address with no stored one."""
    return negotiate(None, None, request.headers.get("accept-language"))


@router.post(
    "/verification",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_ACCEPTED_DOC, **problem_responses(400, 413, 422, 429)},
    summary="Send a new email verification link",
)
async def request_verification(
    body: AddressRequest, request: Request, svc: ServicesDep
) -> Response:
    """Mails a new link to the address when it belongs to an account that is not
    verified yet. The answer is the same for every address, in the same time."""
    ip, locale = client_ip(request), request_locale(request)
    await at_floor(
        lambda: svc.verification.request(body.email, ip=ip, locale=locale),
        what="POST /users/verification",
    )
    return accepted()


@router.post(
    "/verification/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 422),
    summary="Verify an email address with the mailed token",
)
def confirm_verification(body: VerificationConfirm, request: Request, svc: ServicesDep) -> Response:
    """The token of the mailed link (its `token` query parameter). Single-use;
    400 `invalid_token` when it is unknown, used, expired or for something else."""
    svc.verification.confirm(body.token, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_ACCEPTED_DOC, **problem_responses(400, 413, 422, 429)},
    summary="Send a password reset link",
)
async def request_password_reset(
    body: AddressRequest, request: Request, svc: ServicesDep
) -> Response:
    """Mails a reset link when the address belongs to an account. The answer is the
    same for every address, in the same time."""
    ip, locale = client_ip(request), request_locale(request)
    await at_floor(
        lambda: svc.password_reset.request(body.email, ip=ip, locale=locale),
        what="POST /users/password-reset",
    )
    return accepted()


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 413, 422),
    summary="Set a new password with the mailed token",
)
def confirm_password_reset(
    body: PasswordResetConfirm, request: Request, svc: ServicesDep
) -> Response:
    """Sets the new password (422 `weak_password` when the policy refuses it; the
    token stays usable). Every session, refresh token and access token of the
    account ends; nobody is signed in. 400 `invalid_token` for a bad token."""
    svc.password_reset.confirm(
        body.token, body.password, locale=request_locale(request), ip=client_ip(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
