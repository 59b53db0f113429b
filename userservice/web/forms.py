"""What every hosted form shares: reading a POSTed form strictly, the origin and
CSRF checks, the redirect after a POST and the error page."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from userservice.i18n import N_
from userservice.web.browser import CSRF_FIELD, CsrfRejected, check_csrf, same_origin
from userservice.web.templating import PAGE_HEADERS, render

MAX_FORM_FIELDS = 16
UNREADABLE = N_("The form could not be read.")


class BadForm(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def redirect(location: str) -> RedirectResponse:
    # A7 (RFC 9700 §4.12): 303 makes the browser follow with a GET; a 307 would
    # replay the POSTed password to wherever `location` points.
    return RedirectResponse(location, status_code=303, headers=PAGE_HEADERS)


async def read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        # Our forms never send anything else; with no token in it, the CSRF check
        # answers 403 (a cross-site text/plain or multipart POST is one such).
        return {}
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",  # %ff is not text; never pass U+FFFD on as an email
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm(400, UNREADABLE) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            # A repeated field could carry a second value past a check (G4).
            raise BadForm(400, UNREADABLE)
        form[name] = value
    return form


async def checked_form(request: Request, failure_title: str) -> dict[str, str] | Response:
    """Every POST form: same origin (F4), a readable form, and the CSRF token.
    Returns the form, or the error page to send instead."""
    if not same_origin(request):
        raise CsrfRejected("This form was sent from another site.")
    try:
        form = await read_form(request)
    except BadForm as exc:
        return error_page(request, exc.status, failure_title, exc.message)
    check_csrf(request, form.get(CSRF_FIELD))
    return form


def error_page(request: Request, status: int, title: str, message: str, **headers: str) -> Response:
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        status_code=status,
        headers=headers,
    )
