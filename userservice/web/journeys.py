"""Hosted pages of the mail journeys: sign up, verify the address, reset a
forgotten password. No script; every POST carries the CSRF token and passes the
origin check (F4); every answer after a POST is a 303 (A7).

No page tells whether an address has an account (L1, L2): sign-up, a new
verification mail and a reset request each answer with one page for every
address, no earlier than the response floor. A GET never uses a mailed token
(mail scanners prefetch links): it shows a button, and the POST uses it."""

from __future__ import annotations

from typing import Any, Protocol

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    InvalidAccountToken,
    InvalidInput,
    RegistrationClosed,
    Throttled,
    WeakPassword,
)
from userservice.i18n import N_
from userservice.security.response_floor import at_floor
from userservice.services.account_tokens import LINK_INVALID, well_formed
from userservice.services.emails import MAX_EMAIL_LENGTH
from userservice.web.browser import issue_csrf
from userservice.web.forms import checked_form, error_page, redirect
from userservice.web.locale import page_locale
from userservice.web.templating import render
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(include_in_schema=False)

MAX_NAME_LENGTH = 200
BAD_EMAIL = N_("Enter a valid email address.")
NO_PASSWORD = N_("Enter a password.")
BAD_NAME = N_("Enter a name without control characters.")
TOO_MANY = N_("Too many requests from your network. Wait a while and try again.")
LINK_TITLE = N_("This link cannot be used")


def _page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    values: dict[str, Any] = {"errors": {}, **(context or {})}
    cookies = Response()
    values["csrf_token"] = issue_csrf(cookies, request)
    return render(request, template, values, status_code=status, response=cookies, headers=headers)


def _throttled(request: Request, exc: Throttled) -> Response:
    return error_page(
        request,
        429,
        N_("Too many requests"),
        TOO_MANY,
        **{"Retry-After": str(exc.retry_after)},
    )


def _email_field(form: dict[str, str]) -> str | None:
    email = form.get("email", "").strip()
    return email if 0 < len(email) <= MAX_EMAIL_LENGTH else None


class _MailRequest(Protocol):
    def __call__(self, email: str, *, ip: str, locale: str) -> None: ...


async def _ask_for_mail(
    request: Request,
    ask: _MailRequest,
    form_page: tuple[str, dict[str, Any]],
    sent: str,
) -> Response:
    """A form asking for a mail to an address: the same page after it for every
    address, at the response floor (L2); the form again for a malformed one."""
    form = await checked_form(request, N_("The mail could not be sent"))
    if isinstance(form, Response):
        return form
    email = _email_field(form)
    if email is not None:
        address, ip, locale = email, client_ip(request), page_locale(request)
        try:
            await at_floor(
                lambda: ask(address, ip=ip, locale=locale), what=f"POST {request.url.path}"
            )
        except InvalidInput:
            email = None
        except Throttled as exc:
            return _throttled(request, exc)
    if email is None:
        template, context = form_page
        shown = form.get("email", "")[:MAX_EMAIL_LENGTH]
        context = {**context, "email": shown, "errors": {"email": BAD_EMAIL}}
        return _page(request, template, context, status=400)
    return redirect(sent)


# Sign up ----------------------------------------------------------------------


@router.get("/register")
async def register_form(request: Request) -> Response:
    return _page(request, "register.html", {"email": "", "display_name": ""})


@router.post("/register")
async def register_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, N_("Sign-up failed"))
    if isinstance(form, Response):
        return form
    email, password = _email_field(form), form.get("password", "")
    name = form.get("display_name", "").strip()[:MAX_NAME_LENGTH] or None
    errors: dict[str, str] = {}
    if email is None:
        errors["email"] = BAD_EMAIL
    if not password:
        errors["password"] = NO_PASSWORD
    if name is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        errors["display_name"] = BAD_NAME
    if not errors:
        address, ip, locale = email or "", client_ip(request), page_locale(request)
        try:
            # argon2 runs off the event loop, for a taken address as for a new one.
            await at_floor(
                lambda: svc.signup.register(
                    address, password, name, ip=ip, locale=locale, reveal=False
                ),
                what="POST /register",
            )
        except InvalidInput as exc:
            # Only the address or the password can be refused; neither depends on
            # whether the address has an account.
            field = "password" if isinstance(exc, WeakPassword) else "email"
            errors[field] = exc.detail if field == "password" else BAD_EMAIL
        except RegistrationClosed:
            return error_page(
                request,
                403,
                N_("Sign-up is closed"),
                N_("This server does not accept new accounts."),
            )
        except Throttled as exc:
            return _throttled(request, exc)
    if errors:
        context = {"email": form.get("email", "")[:MAX_EMAIL_LENGTH], "display_name": name or ""}
        return _page(request, "register.html", {**context, "errors": errors}, status=400)
    return redirect("/register/sent")


@router.get("/register/sent")
async def register_sent(request: Request) -> Response:
    return _page(request, "register_sent.html", {"resent": False})


# Verify the address -----------------------------------------------------------


def _link_refused(request: Request, template: str) -> Response:
    # The text of every refused link is the one the services refuse it with (E8).
    context = {"state": "invalid", "valid": False, "token": "", "refused": LINK_INVALID}
    return _page(request, template, context, status=400)


@router.get("/verify-email")
async def verify_form(request: Request, svc: ServicesDep) -> Response:
    token = request.query_params.get("token", "")
    try:
        # A read only: the button is offered for a usable link, which stays unused.
        await anyio.to_thread.run_sync(svc.verification.check, token)
    except InvalidAccountToken:
        return _link_refused(request, "verify_email.html")
    return _page(request, "verify_email.html", {"state": "confirm", "token": token})


@router.post("/verify-email")
async def verify_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, LINK_TITLE)
    if isinstance(form, Response):
        return form
    try:
        token, ip = form.get("token", ""), client_ip(request)
        await anyio.to_thread.run_sync(lambda: svc.verification.confirm(token, ip=ip))
    except InvalidAccountToken:
        return _link_refused(request, "verify_email.html")
    return _page(request, "verify_email.html", {"state": "done", "token": ""})


@router.get("/verify-email/resend")
async def resend_form(request: Request) -> Response:
    return _page(request, "verify_email.html", {"state": "resend", "token": "", "email": ""})


@router.post("/verify-email/resend")
async def resend_submit(request: Request, svc: ServicesDep) -> Response:
    form_page = ("verify_email.html", {"state": "resend", "token": ""})
    return await _ask_for_mail(request, svc.verification.request, form_page, "/verify-email/sent")


@router.get("/verify-email/sent")
async def resend_sent(request: Request) -> Response:
    return _page(request, "register_sent.html", {"resent": True})


# Forgotten password -----------------------------------------------------------


@router.get("/forgot-password")
async def forgot_form(request: Request) -> Response:
    return _page(request, "forgot_password.html", {"email": ""})


@router.post("/forgot-password")
async def forgot_submit(request: Request, svc: ServicesDep) -> Response:
    form_page: tuple[str, dict[str, Any]] = ("forgot_password.html", {})
    sent = "/forgot-password/sent"
    return await _ask_for_mail(request, svc.password_reset.request, form_page, sent)


@router.get("/forgot-password/sent")
async def forgot_sent(request: Request) -> Response:
    return _page(request, "forgot_password_sent.html")


@router.get("/reset-password")
async def reset_form(request: Request, svc: ServicesDep) -> Response:
    token = request.query_params.get("token", "")
    try:
        # A read only: the form is offered for a usable link, which stays unused.
        await anyio.to_thread.run_sync(svc.password_reset.check, token)
    except InvalidAccountToken:
        return _link_refused(request, "reset_password.html")
    return _page(request, "reset_password.html", {"token": token, "valid": True})


@router.post("/reset-password")
async def reset_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, LINK_TITLE)
    if isinstance(form, Response):
        return form
    token, password = form.get("token", ""), form.get("password", "")
    if not well_formed(token):
        return _link_refused(request, "reset_password.html")
    error: str | None = None
    if not password:
        error = NO_PASSWORD
    else:
        locale, ip = page_locale(request), client_ip(request)
        try:
            # The password policy bounds the length before any hash (E1).
            await anyio.to_thread.run_sync(
                lambda: svc.password_reset.confirm(token, password, locale=locale, ip=ip)
            )
        except InvalidAccountToken:
            return _link_refused(request, "reset_password.html")
        except WeakPassword as exc:
            error = exc.detail
    if error is not None:
        # The token was not used: the same link still sets a password.
        context = {"token": token, "valid": True, "errors": {"password": error}}
        return _page(request, "reset_password.html", context, status=400)
    # L4: the reset signs nobody in; the sign-in page says it worked.
    return redirect("/login?reset=1")
