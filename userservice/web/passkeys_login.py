"""Signing in with a passkey (M9, M10): passwordless from the sign-in page, or as
the second step after the password (M6); and a passkey made during a sign-in
that the rule sends to enrolment (M8, M13). The page carries the options; the local
script puts the authenticator's answer into a plain form, sent with the CSRF token
past the origin check (F4). Every refusal is one generic message and status 400,
whatever did not verify (unknown key, wrong origin, spent challenge, a counter
that went back), and never a session."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidInput,
    InvalidPasskey,
    PasskeysUnavailable,
    Throttled,
)
from userservice.i18n import N_
from userservice.services.assurance import PASSWORD_ONLY, with_second_factor
from userservice.web.browser import safe_next
from userservice.web.forms import checked_form, redirect
from userservice.web.locale import page_locale
from userservice.web.login_enrol import ENROL_CONTEXT, enrol_start_page
from userservice.web.login_steps import (
    ENROL_PAGE,
    SECOND_FACTOR_PAGE,
    back_to_login,
    complete_login,
    half_login,
    start_session,
)
from userservice.web.pages import login_page
from userservice.web.passkey_views import answer_of, passkey_name
from userservice.web.second_factor import step_page
from userservice.web.templating import render
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("Sign-in failed")
NOT_ACCEPTED = N_("That passkey could not be used to sign in. Try again, or use your password.")
TOO_MANY = N_("Too many sign-in attempts. Wait a little and try again.")
NOT_ADDED = N_(
    "The passkey could not be added: the answer did not verify, took too long, or the "
    "passkey is registered already. Try again."
)


@router.post("/login/passkey")
async def passkey_sign_in(request: Request, svc: ServicesDep) -> Response:
    """M9, M10: a discoverable passkey with user verification signs in alone; its
    session's amr is hwk or swk, and mfa (the authenticator's PIN or biometric)."""
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    next_path = safe_next(form.get("next"))
    answer = answer_of(form)
    if answer is None:
        return login_page(request, email="", next_path=next_path, error=NOT_ACCEPTED, status=400)
    ip = client_ip(request)
    try:
        signed = await anyio.to_thread.run_sync(lambda: svc.passkeys.sign_in(answer, ip=ip))
    except (InvalidPasskey, PasskeysUnavailable):
        return login_page(request, email="", next_path=next_path, error=NOT_ACCEPTED, status=400)
    except Throttled as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return login_page(
            request, email="", next_path=next_path, error=TOO_MANY, status=429, headers=retry
        )
    return await complete_login(
        request,
        svc,
        signed.user_id,
        auth_time=signed.auth_time,
        next_path=next_path,
        amr=signed.amr,
    )


@router.post(SECOND_FACTOR_PAGE + "/passkey")
async def passkey_second_step(request: Request, svc: ServicesDep) -> Response:
    """M6, M10: after the password, one of this account's passkeys (the challenge
    is bound to this half-login, so another account's key or another browser's
    answer is refused); the session says pwd, hwk or swk, and mfa."""
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    found = await half_login(request, svc, "verify")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    user_id, ip = state.user.id, client_ip(request)
    answer = answer_of(form)
    try:
        if answer is None:
            raise InvalidPasskey("unreadable answer")
        method = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.verify_second_factor(user_id, answer, raw_id, ip=ip)
        )
    except (InvalidPasskey, PasskeysUnavailable):
        # M6: a refused answer counts as a wrong code; the fifth ends the half-login.
        if not await anyio.to_thread.run_sync(lambda: svc.half_logins.failed(raw_id)):
            return back_to_login("too_many_codes", state.next_path)
        return await step_page(request, svc, raw_id, user_id, problem="passkey_refused", status=400)
    except Throttled as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return await step_page(
            request, svc, raw_id, user_id, problem="passkey_throttled", status=429, headers=retry
        )
    if not await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id)):
        # M6: ended meanwhile (a parallel request decided, or its time ran out).
        return back_to_login("expired", state.next_path)
    return await complete_login(
        request,
        svc,
        user_id,
        auth_time=state.auth_time,
        next_path=state.next_path,
        amr=with_second_factor(method),
    )


@router.post(ENROL_PAGE + "/passkey")
async def passkey_enrol(request: Request, svc: ServicesDep) -> Response:
    """M8, M13: the sign-in rule requires a factor and the account has none; a
    passkey made now, its challenge bound to this half-login, is that factor. As
    the app's forced enrolment: the codes shown once (M2), and the session says
    pwd, for a factor added on the strength of the password proves nothing more
    until the next sign-in."""
    form = await checked_form(request, FAILED)
    if isinstance(form, Response):
        return form
    found = await half_login(request, svc, "enrol")
    if isinstance(found, Response):
        return found
    raw_id, state = found
    user_id, ip, locale = state.user.id, client_ip(request), page_locale(request)
    name, answer = passkey_name(form), answer_of(form)
    try:
        if name is None or answer is None:
            raise InvalidPasskey("unreadable answer or name")
        added = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.register(
                user_id, answer, name, ip=ip, locale=locale, half_login_id=raw_id
            )
        )
    except (InvalidPasskey, Conflict, InvalidInput):
        # M6: a refused answer counts as a wrong setup code; the fifth ends it.
        if not await anyio.to_thread.run_sync(lambda: svc.half_logins.failed(raw_id)):
            return back_to_login("too_many_codes", state.next_path)
        return await enrol_start_page(
            request, svc, raw_id, user_id, passkey_error=NOT_ADDED, status=400
        )
    except EmailNotVerified:
        await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id))
        return back_to_login("expired", state.next_path)
    except PasskeysUnavailable:
        return redirect(ENROL_PAGE)
    # The registration ended every session of the account (M9), this half-login's
    # time too; it ends here, and this browser's session starts after it.
    if not await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(raw_id)):
        return back_to_login("expired", state.next_path)
    continue_to, codes = state.next_path or "/account", added.recovery_codes
    # M5, M8: the session says pwd, as after the app's forced enrolment.
    response: Response = redirect(continue_to) if codes is None else Response()
    await start_session(
        request, svc, user_id, response, auth_time=state.auth_time, amr=PASSWORD_ONLY
    )
    if codes is None:
        # A factor came meanwhile (another tab): its codes stand, none are shown.
        return response
    context = {
        **ENROL_CONTEXT,
        "recovery_codes": codes,
        "codes_for": "passkey",
        "continue_to": continue_to,
        "here": continue_to,
    }
    return render(request, "enrol.html", context, response=response)
