"""RFC 9457 problem details for the API; RFC 6749 §5.2 errors for OAuth endpoints."""

from __future__ import annotations

import enum
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from userservice import errors
from userservice.api.challenges import challenge_headers
from userservice.api.deps import BearerRefused
from userservice.api.methods import allowed_methods
from userservice.oauth.errors import error_description
from userservice.services.assurance import ACR_MFA

log = logging.getLogger("userservice.api")

PROBLEM_TYPE = "application/problem+json"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_STATUS = {
    errors.NotFound: 404,
    errors.EmailTaken: 409,
    errors.Conflict: 409,
    errors.WeakPassword: 422,
    errors.InvalidInput: 422,
    errors.RegistrationClosed: 403,
    errors.AuthenticationFailed: 401,
    # M4: the password was right, and it is not enough: authenticate again.
    errors.SecondFactorRequired: 401,
    errors.Forbidden: 403,
    errors.Throttled: 429,
    errors.ServiceUnavailable: 503,
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401:
        # RFC 6749 §5.2: invalid_client via HTTP auth answers with a challenge.
        headers["WWW-Authenticate"] = 'Basic realm="userservice", charset="UTF-8"'
    # S7: one rule for every OAuth endpoint's description (userservice/oauth/errors.py).
    body = {"error": error, "error_description": error_description(error, description)}
    return JSONResponse(body, status_code=status, headers=headers)


def bearer_error(refused: BearerRefused) -> JSONResponse:
    # RFC 6750 §3: a protected resource's errors go in WWW-Authenticate too.
    description = error_description(refused.error, refused.description)  # S7
    challenge = (
        f'Bearer realm="userservice", error="{refused.error}", error_description="{description}"'
    )
    if refused.scope:
        challenge += f', scope="{refused.scope}"'
    return JSONResponse(
        {"error": refused.error, "error_description": description},
        status_code=refused.status,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )


class ErrorForm(enum.Enum):
    """How an endpoint speaks when the framework refuses a request for it."""

    PROBLEM = "problem"  # the API: RFC 9457 problem details
    OAUTH = "oauth"  # the OAuth endpoints: RFC 6749 §5.2, what OAuth clients parse
    PAGE = "page"  # pages people navigate to: plain text, never JSON


ERROR_FORM = "error_form"  # the request state's key; api/middleware.py sets it per path


def refusal(
    form: ErrorForm, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """A request refused before (or instead of) its endpoint: too large, malformed,
    or a method the path does not serve (I1, I2, G4, C11)."""
    if form is ErrorForm.OAUTH:
        response = oauth_error("invalid_request", detail, status)
        response.headers.update(headers or {})
        return response
    if form is ErrorForm.PAGE:
        return PlainTextResponse(detail, status_code=status, headers=headers)
    return problem(status, code, detail, headers=headers)


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the submitted input back: it may be a password.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def _domain_error(request: Request, exc: errors.DomainError) -> JSONResponse:
    if isinstance(exc, errors.OAuthError):
        return oauth_error(exc.error, exc.detail, exc.status)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    headers.update(challenge_headers(exc))
    if isinstance(exc, errors.SecondFactorRequired):
        headers.update(second_factor_challenge())
    if isinstance(exc, errors.ServiceUnavailable):
        headers["Retry-After"] = "1"
    return problem(status, exc.code, exc.detail, headers=headers)


def second_factor_challenge() -> dict[str, str]:
    """RFC 9470 §3: the caller needs a token from a login that meets this acr (a
    second factor); no Basic challenge, since a password alone cannot meet it (M4)."""
    return {
        "WWW-Authenticate": (
            'Bearer realm="userservice", error="insufficient_user_authentication", '
            'error_description="A second factor is required", '
            f'acr_values="{ACR_MFA}"'
        )
    }


async def _bearer_refused(request: Request, exc: BearerRefused) -> JSONResponse:
    return bearer_error(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    found = _clean_validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in found):
        return problem(400, "malformed_body", "The request body is not valid JSON.")
    return problem(422, "validation_error", "The request is not valid.", errors=found)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # 400 here is FastAPI's "error parsing the body" (e.g. JSON that is not UTF-8).
    code = {
        400: "malformed_body",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
    }.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request.app, request.scope)):
        headers["Allow"] = ", ".join(allowed)
    form = request.scope.get("state", {}).get(ERROR_FORM, ErrorForm.PROBLEM)
    return refusal(form, exc.status_code, code, str(exc.detail), headers)


async def _database_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
    # R2/R3/H3: a locked or unreachable database, or a pool with no connection
    # free in time, is temporary; never a 500, and never access granted.
    log.warning("database unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
    return problem(
        503,
        "database_unavailable",
        "The database is busy or unreachable; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    log.error("database error: %s", type(exc.orig).__name__)
    return problem(
        503,
        "database_error",
        "The database could not complete the request.",
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    state = request.scope.get("state", {})
    request_id = state.get("request_id", "")
    log.exception("unhandled error (request %s)", request_id)
    # This handler runs outside SecurityMiddleware: add its headers here (F6).
    headers = {k.decode(): v.decode() for k, v in state.get("security_headers", [])}
    # H1: generic body; details stay in the log, found again by the request id.
    return problem(
        500, "internal_error", "Something went wrong.", headers=headers, request_id=request_id
    )


_HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (errors.DomainError, _domain_error),
    (BearerRefused, _bearer_refused),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
    (OperationalError, _database_unavailable),
    (PoolTimeout, _database_unavailable),
    (DBAPIError, _database_error),
    (Exception, _unexpected),
)


def install_error_handlers(app: FastAPI) -> None:
    for exception, handler in _HANDLERS:
        app.add_exception_handler(exception, handler)
