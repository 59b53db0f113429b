"""The second step of a hosted sign-in (M6): the code from the authenticator app
or a recovery code, or, when the sign-in rule requires a second factor of this
user (an administrator under `admins`, anyone under `all`) and they have none,
setting one up (M8, M13). Only these pages read the half-login cookie; every
other page and route reads the session cookie alone, so a half-login grants
nothing. Forms carry the CSRF token and pass the origin check (F4)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import Conflict, EmailNotVerified, InvalidCode, NotFound, Throttled
from userservice.i18n import N_
from userservice.services.assurance import PASSWORD_ONLY, with_second_factor
from userservice.services.factors import TotpEnrolment
from userservice.services.half_logins import HalfLoginState
from userservice.web.browser import HALF_LOGIN_COOKIE, issue_csrf
from userservice.web.forms import checked_form, redirect
from userservice.web.locale import page_locale
from userservice.web.login_steps import (
    ENROL_PAGE,
    SECOND_FACTOR_PAGE,
    back_to_login,
    complete_login,
    start_session,
)
from userservice.web.passkey_views import second_step_options
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("Sign-in failed")
NO_CODE = N_("Enter the 6-digit code from your authenticator app, or a recovery code.")
WRONG = N_("That code is not correct, or it was used already. Try the current code.")
TOO_MANY = N_("Too many wrong codes. Wait a little and try again.")
# A passkey-only account has no app: the code field takes its recovery codes (M2).
NO_RECOVERY_CODE = N_("Use your passkey, or enter one of your recovery codes.")
WRONG_RECOVERY_CODE = N_("That recovery code is not correct, or it was used already.")
PASSKEY_REFUSED = N_(
    "That passkey could not be used. Try again, or enter a code from your authenticator "
    "app or a recovery code."
)
PASSKEY_REFUSED_NO_APP = N_("That passkey could not be used. Try again, or enter a recovery code.")
PASSKEY_TOO_MANY = N_("Too many sign-in attempts. Wait a little and try again.")
# The step's problems by key, worded for an account with the app and without it.
PROBLEMS: dict[str, tuple[str, str]] = {
    "missing": (NO_CODE, NO_RECOVERY_CODE),
    "wrong": (WRONG, WRONG_RECOVERY_CODE),
    "throttled": (TOO_MANY, TOO_MANY),
    "passkey_refused": (PASSKEY_REFUSED, PASSKEY_REFUSED_NO_APP),
    "passkey_throttled": (PASSKEY_TOO_MANY, PASSKEY_TOO_MANY),
}
WRONG_SETUP = N_("That code is not correct. Check the app and try the current code.")
UNVERIFIED = N_(
    "Verify your email address first: only a confirmed address may set up two-step verification."
)
# enrol.html's four states: the start button, the setup, an unverified address,
# the codes.
ENROL_CONTEXT: dict[str, Any] = {
    "start": False,
    "totp": None,
    "errors": {},
    "unverified": None,
    "recovery_codes": None,
}
# The longest code anyone types: a recovery code with its dashes, and spaces.
MAX_CODE_LENGTH = 64


async def _half_login(
    request: Request, svc: Services, step: str
) -> tuple[str, HalfLoginState] | Response:
    """This browser's half-login at `step`, or where the browser goes instead: the
    password again when it is missing, expired or ended (M6), the page of its own
    step otherwise."""
    raw_id = request.cookies.get(HALF_LOGIN_COOKIE)
    state = await svc.half_logins.current(raw_id)
    if raw_id is None or state is None:
        return back_to_login("expired")
    if state.step != step:
        return redirect(ENROL_PAGE if state.step == "enrol" else SECOND_FACTOR_PAGE)
    return raw_id, state


def _code(form: dict[str, str]) -> str:
    return form.get("code", "").strip()[:MAX_CODE_LENGTH]


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    cookies = Response()
    values = {"csrf_token": issue_csrf(cookies, request), "error": None, **context}
    return render(request, name, values, status_code=status, response=cookies, headers=headers)


async def step_page(
    request: Request,
    svc: Services,
    raw_id: str,
    user_id: uuid.UUID,
    *,
    problem: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Every render of the second step (M6): the code form, and one of the
    account's passkeys instead when it has one (M9), worded for the factors it
    has. `problem` is a key of PROBLEMS: the passkey's own ones show beside its
    button, the others beside the code field."""
    summary = await anyio.to_thread.run_sync(svc.factors.summary, user_id)
    options = await second_step_options(svc, user_id, raw_id)
    message = None
    if problem is not None:
        with_app, without_app = PROBLEMS[problem]
        message = with_app if summary.totp else without_app
    on_passkey = problem is not None and problem.startswith("passkey_")
    context = {
        "error": None if on_passkey else message,
        "passkey_error": message if on_passkey else None,
        "passkey_options": options,
        "has_app": summary.totp,
        "has_passkey": summary.passkeys > 0,
    }
    return _page(request, "second_factor.html", context, status=status, headers=headers)


@router.get(SECOND_FACTOR_PAGE)
async def code_form(request: Request, svc: ServicesDep) -> Response:
    found = await _half_login(request, svc, "verify")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    return await step_page(request, svc, raw_id, state.user.id)


@router.post(SECOND_FACTOR_PAGE)
async def code_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    found = await _half_login(request, svc, "verify")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    code = _code(form)
    user_id = state.user.id
    if not code:
        # 400: the form was refused, as for every wrong code below (not counted).
        return await step_page(request, svc, raw_id, user_id, problem="missing", status=400)
    ip, locale = client_ip(request), page_locale(request)
    try:
        method = await anyio.to_thread.run_sync(
            lambda: svc.factors.verify(user_id, code, ip=ip, locale=locale)
        )
    except Throttled as exc:
        # M1: the account's code limit, apart from the password's (M6). The
        # half-login's own count is not spent on a guess that was never checked.
        retry = {"Retry-After": str(exc.retry_after)}
        return await step_page(
            request, svc, raw_id, user_id, problem="throttled", status=429, headers=retry
        )
    except InvalidCode:
        # M6: at most MAX_CODE_ATTEMPTS wrong codes, then the password again.
        if not await anyio.to_thread.run_sync(lambda: svc.half_logins.failed(raw_id)):
            return back_to_login("too_many_codes", state.next_path)
        # 400 and the form again: a refused submission, like the account page's
        # code check; the login page's 200 is for E3's one answer to two causes.
        return await step_page(request, svc, raw_id, user_id, problem="wrong", status=400)
    if not await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id)):
        # M6: ended meanwhile (its fifth wrong code or a correct one in a parallel
        # request, or its time ran out): that request decided; no second session.
        return back_to_login("expired", state.next_path)
    return await complete_login(
        request,
        svc,
        user_id,
        auth_time=state.auth_time,
        next_path=state.next_path,
        amr=with_second_factor(method),
    )


@router.post(SECOND_FACTOR_PAGE + "/cancel")
async def cancel(request: Request, svc: ServicesDep) -> Response:
    """Sign in as someone else: the half-login ends now rather than in minutes."""
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    raw_id = request.cookies.get(HALF_LOGIN_COOKIE)
    if raw_id:
        await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id))
    return back_to_login()


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
    _raw_id, state = found
    if not state.user.email_verified:
        # M3: only proven addresses enrol; this sign-in cannot go on.
        return _page(request, "enrol.html", {**ENROL_CONTEXT, "unverified": UNVERIFIED}, status=403)
    return _page(request, "enrol.html", {**ENROL_CONTEXT, "start": True, "here": ENROL_PAGE})


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
