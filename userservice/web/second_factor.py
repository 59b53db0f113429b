"""The second step of a hosted sign-in (M6): the code from the authenticator app
or a recovery code, or one of the account's passkeys (M9, its route in
web/passkeys_login.py). Setting a factor up when the sign-in rule requires one
and the user has none (M8, M13) is in web/login_enrol.py, whose routes come with
this module's router. Only these pages read the half-login cookie; every
other page and route reads the session cookie alone, so a half-login grants
nothing. Forms carry the CSRF token and pass the origin check (F4)."""

from __future__ import annotations

import uuid

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import InvalidCode, Throttled
from userservice.i18n import N_
from userservice.services.assurance import with_second_factor
from userservice.web.browser import HALF_LOGIN_COOKIE
from userservice.web.forms import checked_form
from userservice.web.locale import page_locale
from userservice.web.login_enrol import router as enrol_router
from userservice.web.login_steps import (
    MAX_CODE_LENGTH,
    SECOND_FACTOR_PAGE,
    back_to_login,
    complete_login,
)
from userservice.web.login_steps import half_login as _half_login
from userservice.web.login_steps import step_form_page as _page
from userservice.web.login_steps import typed_code as _code
from userservice.web.passkey_views import second_step_options
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
        # Offered only where it can be used (passkeys need a domain, M9).
        "has_passkey": options is not None,
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


# The enrolment's pages (web/login_enrol.py) come with this router.
router.include_router(enrol_router)
__all__ = ["MAX_CODE_LENGTH", "router", "step_page"]
