"""Two-step verification on the account page: set up an authenticator app, make
new recovery codes, turn it off. Each change needs the current password first
(M3, recent authentication; checked off the event loop and throttled like a
sign-in, E1 and E4) and, like every form here, the CSRF token and the origin
check (F4). Adding or removing the app ends every session and token of the user
(M3); this browser goes on in a new session whose amr says how it was proven (M5).

The pages that show the key or the codes are never cached (PAGE_HEADERS:
no-store), and the codes are shown once only: the service keeps their digests."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidCode,
    NotFound,
    Throttled,
)
from userservice.i18n import N_
from userservice.services.assurance import ONE_TIME_CODE, PASSWORD_ONLY, with_second_factor
from userservice.services.factors import TotpEnrolment
from userservice.services.sessions import BrowserSession
from userservice.web.account import (
    checked_password,
    continue_in_new_session,
    signed_in,
)
from userservice.web.account_page import TOO_MANY, Refusal, account_page
from userservice.web.browser import issue_csrf
from userservice.web.forms import redirect
from userservice.web.locale import page_locale
from userservice.web.passkey_views import factor_kind
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("Two-step verification could not be changed")
# The account page's fields these forms report on (one per form), and the
# section's own line for what is about the state, not a field.
START_FIELD, CODES_FIELD, REMOVE_FIELD = "factor_password", "codes_password", "remove_password"
SECTION = "two_factor"
UNVERIFIED = N_(
    "Verify your email address first: only a confirmed address may set up two-step verification."
)
ALREADY_ON = N_("An authenticator app is already set up. Turn it off first to set up another.")
NOT_ON = N_("Two-step verification is not on.")
NO_CODE = N_("Enter the 6-digit code the app shows.")
WRONG_CODE = N_("That code is not correct. Check the app and try the current code.")
EXPIRED = N_("The setup took too long and has ended. Start again.")
# M8: while administrators must have a second factor, theirs stays on.
ADMIN_KEEPS = N_(
    "Administrators must keep two-step verification on. For a new phone, ask another "
    "administrator to reset it; you set up the new app at your next sign-in."
)
# M13: under the rule for everyone, the last factor stays on for every account.
EVERYONE_KEEPS = N_(
    "This service requires two-step verification of every account: add a passkey "
    "before turning the app off. For a new phone, ask an administrator to reset it; "
    "you set up the new one at your next sign-in."
)


def _setup_page(
    request: Request,
    totp: TotpEnrolment | None,
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The setup page: the QR and key right after the start; after a wrong code
    only the code field (the app already holds the key, and the key is not kept
    anywhere a page could read it again)."""
    cookies = Response()
    context: dict[str, Any] = {
        "totp": totp,
        "errors": errors or {},
        "csrf_token": issue_csrf(cookies, request),
        "here": "/account#two-factor",
    }
    return render(
        request,
        "account_totp_setup.html",
        context,
        status_code=status,
        response=cookies,
        headers=headers,
    )


def _codes_page(
    request: Request, codes: list[str], response: Response, *, added: bool, codes_for: str = "app"
) -> Response:
    """The ten codes, once (M2). The language switch goes back to the account
    page: reloading this page in another language must not ask for them again."""
    context: dict[str, Any] = {
        "recovery_codes": codes,
        "added": added,
        "codes_for": codes_for,
        "csrf_token": issue_csrf(response, request),
        "here": "/account#two-factor",
    }
    return render(request, "account_recovery_codes.html", context, response=response)


async def _password_proven(
    request: Request, svc: Services, field: str
) -> BrowserSession | Response:
    """M3: a factor change on the pages needs the current password. The signed-in
    session once it is proven, or the answer to send instead: signed_in's, or the
    account page with the password's refusal on `field`."""
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    password = form.get("current_password", "")
    refusal = await checked_password(request, svc, session, password, field)
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    return session


@router.post("/account/two-factor/start")
async def start(request: Request, svc: ServicesDep) -> Response:
    session = await _password_proven(request, svc, START_FIELD)
    if isinstance(session, Response):
        return session
    ip = client_ip(request)
    try:
        enrolment = await anyio.to_thread.run_sync(
            lambda: svc.factors.start_totp(session.user.id, ip=ip)
        )
    except EmailNotVerified:
        refusal = Refusal({SECTION: UNVERIFIED}, status=403)
    except Conflict:
        refusal = Refusal({SECTION: ALREADY_ON}, status=409)
    else:
        return _setup_page(request, enrolment)
    return await account_page(request, svc, session, refusal=refusal)


@router.post("/account/two-factor/confirm")
async def confirm(request: Request, svc: ServicesDep) -> Response:
    """M1: the app is on only once it showed a valid code; its codes are throttled
    per account, and a replayed one is refused like a wrong one."""
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    code = form.get("code", "").strip()
    if not code:
        return _setup_page(request, None, {"code": NO_CODE}, status=400)
    ip, locale = client_ip(request), page_locale(request)
    user_id = session.user.id
    try:
        codes = await anyio.to_thread.run_sync(
            lambda: svc.factors.confirm_totp(user_id, code[:64], ip=ip, locale=locale)
        )
    except InvalidCode:
        return _setup_page(request, None, {"code": WRONG_CODE}, status=400)
    except Throttled as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        return _setup_page(request, None, {"code": TOO_MANY}, status=429, headers=retry)
    except NotFound:
        refusal = Refusal({SECTION: EXPIRED})
        return await account_page(request, svc, session, refusal=refusal)
    # M3: the service ended every session and token; this browser, which just
    # showed both factors, goes on in a new session (M5: amr pwd otp mfa).
    response = Response()
    amr = with_second_factor(ONE_TIME_CODE)
    await continue_in_new_session(request, svc, user_id, response, amr=amr)
    return _codes_page(request, codes, response, added=True)


@router.post("/account/two-factor/recovery-codes")
async def new_codes(request: Request, svc: ServicesDep) -> Response:
    """M2: a new set voids the old one; the page shows it once."""
    session = await _password_proven(request, svc, CODES_FIELD)
    if isinstance(session, Response):
        return session
    ip, locale = client_ip(request), page_locale(request)
    try:
        codes = await anyio.to_thread.run_sync(
            lambda: svc.factors.regenerate_recovery_codes(session.user.id, ip=ip, locale=locale)
        )
    except Conflict:
        refusal = Refusal({SECTION: NOT_ON}, status=409)
        return await account_page(request, svc, session, refusal=refusal)
    # M2: the page's words follow the factors the codes stand in for.
    summary = await anyio.to_thread.run_sync(svc.factors.summary, session.user.id)
    return _codes_page(request, codes, Response(), added=False, codes_for=factor_kind(summary))


@router.post("/account/two-factor/remove")
async def remove(request: Request, svc: ServicesDep) -> Response:
    """M3: turning the app off ends every session and token; this browser goes on
    with the password alone (M5)."""
    session = await _password_proven(request, svc, REMOVE_FIELD)
    if isinstance(session, Response):
        return session
    ip, locale = client_ip(request), page_locale(request)
    try:
        await anyio.to_thread.run_sync(
            lambda: svc.factors.remove_totp(session.user.id, ip=ip, locale=locale)
        )
    except NotFound:
        # A second tab got there first: the page shows the truth.
        return redirect("/account#two-factor")
    except Conflict:
        keeps = ADMIN_KEEPS if session.user.is_admin else EVERYONE_KEEPS
        refusal = Refusal({SECTION: keeps}, status=409)
        return await account_page(request, svc, session, refusal=refusal)
    response = redirect("/account?done=two-factor-off")
    await continue_in_new_session(request, svc, session.user.id, response, amr=PASSWORD_ONLY)
    return response
