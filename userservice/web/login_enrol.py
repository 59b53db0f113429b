"""The forced enrolment of a hosted sign-in (M8, M13): the sign-in rule requires a
second factor of this user (an administrator under `admins`, anyone under `all`)
and they have none, so the half-login sets one up before any session: the
authenticator app, or a passkey where passkeys are available (its route is in
web/passkeys_login.py). Only these pages and the second step read the half-login
cookie. Forms carry the CSRF token and pass the origin check (F4)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import Conflict, EmailNotVerified, InvalidCode, NotFound, Throttled
from userservice.i18n import N_
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.factors import TotpEnrolment
from userservice.web.forms import checked_form, redirect
from userservice.web.locale import page_locale
from userservice.web.login_steps import ENROL_PAGE, back_to_login, start_session
from userservice.web.login_steps import half_login as _half_login
from userservice.web.login_steps import step_form_page as _page
from userservice.web.login_steps import typed_code as _code
from userservice.web.passkey_views import enrol_options
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("Sign-in failed")
NO_CODE = N_("Enter the 6-digit code from your authenticator app, or a recovery code.")
TOO_MANY = N_("Too many wrong codes. Wait a little and try again.")
WRONG_SETUP = N_("That code is not correct. Check the app and try the current code.")
UNVERIFIED = N_(
    "Verify your email address first: only a confirmed address may set up two-step verification."
)
# enrol.html's four states: the start button, the setup, an unverified address,
# the codes; a passkey is offered beside the app where passkeys are available.
ENROL_CONTEXT: dict[str, Any] = {
    "start": False,
    "totp": None,
    "errors": {},
    "unverified": None,
    "recovery_codes": None,
    "enrol_passkey_options": None,
    "passkey_error": None,
}


def _enrol_page(
    request: Request,
    totp: TotpEnrolment | None,
    *,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    errors = {"code": error} if error else {}
    context = {"totp": totp, "errors": errors, "here": ENROL_PAGE}
    return _page(
        request, "enrol.html", {**ENROL_CONTEXT, **context}, status=status, headers=headers
    )


@router.get(ENROL_PAGE)
async def enrol_form(request: Request, svc: ServicesDep) -> Response:
    """M8, M13: the rule requires a factor of this user before any session.
    Opening the page changes nothing: the key is made by the "Start" button's
    POST (below), so a reload, a prefetch or the back button does not replace it."""
    found = await _half_login(request, svc, "enrol")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    if not state.user.email_verified:
        # M3: only proven addresses enrol; this sign-in cannot go on.
        return _page(request, "enrol.html", {**ENROL_CONTEXT, "unverified": UNVERIFIED}, status=403)
    return await enrol_start_page(request, svc, raw_id, state.user.id)


async def enrol_start_page(
    request: Request,
    svc: Services,
    raw_id: str,
    user_id: uuid.UUID,
    *,
    passkey_error: str | None = None,
    status: int = 200,
) -> Response:
    """The enrolment's first state: the app's start button, and a passkey instead
    where passkeys are available (M9), its challenge bound to this half-login."""
    options = await enrol_options(svc, user_id, raw_id)
    context = {
        **ENROL_CONTEXT,
        "start": True,
        "here": ENROL_PAGE,
        "enrol_passkey_options": options,
        "passkey_error": passkey_error,
    }
    return _page(request, "enrol.html", context, status=status)


@router.post(ENROL_PAGE + "/start")
async def enrol_start(request: Request, svc: ServicesDep) -> Response:
    """A new key (replacing one not yet confirmed): it is never stored where a
    page could show it again. The form's CSRF token and origin check (F4) and the
    Strict half-login cookie keep other sites from pressing this button."""
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    found = await _half_login(request, svc, "enrol")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    ip = client_ip(request)
    try:
        enrolment = await anyio.to_thread.run_sync(
            lambda: svc.factors.start_totp(state.user.id, ip=ip)
        )
    except EmailNotVerified:
        # M3: only proven addresses enrol; this sign-in cannot go on.
        await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id))
        unverified = {**ENROL_CONTEXT, "unverified": UNVERIFIED}
        return _page(request, "enrol.html", unverified, status=403)
    except Conflict:
        # An app was confirmed meanwhile (another tab): sign in with its code.
        await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id))
        return back_to_login("expired", state.next_path)
    return _enrol_page(request, enrolment)


@router.post(ENROL_PAGE)
async def enrol_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    found = await _half_login(request, svc, "enrol")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    code = _code(form)
    if not code:
        return _enrol_page(request, None, error=NO_CODE, status=400)
    ip, locale = client_ip(request), page_locale(request)
    user_id = state.user.id
    try:
        codes = await anyio.to_thread.run_sync(
            lambda: svc.factors.confirm_totp(user_id, code, ip=ip, locale=locale)
        )
    except InvalidCode:
        if not await anyio.to_thread.run_sync(lambda: svc.half_logins.failed(raw_id)):
            return back_to_login("too_many_codes", state.next_path)
        return _enrol_page(request, None, error=WRONG_SETUP, status=400)
    except Throttled as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return _enrol_page(request, None, error=TOO_MANY, status=429, headers=retry)
    except NotFound:
        # The setup took too long (or never started here): the start button again.
        return redirect(ENROL_PAGE)
    # The confirmation revoked everything of the user (M3), this half-login too
    # (its auth_time is before the revocation). The codes are on this one page
    # only (M2), and "Continue" is a plain link to where the sign-in was going.
    if not await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id)):
        # M6: ended meanwhile (a parallel request, or its time ran out). The app
        # is on; the next sign-in takes its code, and the account page makes new
        # recovery codes.
        return back_to_login("expired", state.next_path)
    response = Response()
    # M5, M8: an app set up just now proves nothing beyond the password (whoever
    # had the password could have set it up), so this session, and every token
    # issued from it, says pwd and acr pwd. The owner is told by the
    # factor_added mail; the next sign-in takes the password and an app code.
    await start_session(
        request, svc, user_id, response, auth_time=state.auth_time, amr=PASSWORD_ONLY
    )
    continue_to = state.next_path or "/account"
    # The language switch goes on to the destination: this page is never shown again.
    context = {
        **ENROL_CONTEXT,
        "recovery_codes": codes,
        "continue_to": continue_to,
        "here": continue_to,
    }
    return render(request, "enrol.html", context, response=response)
