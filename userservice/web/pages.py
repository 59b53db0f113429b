"""Hosted pages: /login and /logout, on a server-side browser session (the account
page is web/account.py)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    AuthenticationFailed,
    EmailNotVerified,
    SecondFactorRequired,
    Throttled,
)
from userservice.i18n import N_
from userservice.security.password_policy import MAX_LENGTH as MAX_PASSWORD_LENGTH
from userservice.services.login_limits import BrowserLogin
from userservice.web.browser import (
    DEVICE_COOKIE,
    SESSION_COOKIE,
    CsrfRejected,
    clear_session_cookie,
    current_session,
    issue_csrf,
    safe_next,
)
from userservice.web.forms import checked_form as _checked_form
from userservice.web.forms import error_page as _error
from userservice.web.forms import redirect as _redirect
from userservice.web.login_steps import begin_second_step, complete_login
from userservice.web.passkey_views import sign_in_options
from userservice.web.templating import render
from userservice.wiring import ServicesDep, client_ip, wired

router = APIRouter(include_in_schema=False)

MAX_EMAIL_LENGTH = 320
LOGIN_FAILED = N_("Incorrect email or password.")
# What the sign-in page says after the account page sent the browser here, by a
# fixed key of the query (never text from it, F7).
LOGIN_NOTICES = {
    ("signed_out", "everywhere"): N_("You were signed out everywhere: on every device and app."),
    ("deleted", "1"): N_("Your account was deleted."),
    # M6: the half-login ended without a session: too slow, or too many codes.
    ("expired", "1"): N_("The sign-in took too long and has ended. Sign in again."),
    ("too_many_codes", "1"): N_("Too many wrong codes. Sign in again with your password."),
}
UNVERIFIED = N_(
    "Verify your email address first: open the link in the mail we sent you, or ask for a new mail."
)


def login_page(
    request: Request,
    *,
    email: str,
    next_path: str | None,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    reset: bool = False,
    unverified: bool = False,
    notice: str | None = None,
) -> Response:
    context: dict[str, Any] = {
        "email": email[:MAX_EMAIL_LENGTH],
        "next": next_path or "",
        "error": error,
        "action": "/login",
        "reset": reset,
        "unverified": unverified,
        "notice": notice,
        # M9: passwordless sign-in, when passkeys are on.
        "passkey_options": sign_in_options(wired(request.app)),
    }
    cookies = Response()
    context["csrf_token"] = issue_csrf(cookies, request)
    return render(
        request, "login.html", context, status_code=status, response=cookies, headers=headers
    )


@router.get("/login")
async def login_form(request: Request, svc: ServicesDep) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    forced = request.query_params.get("force") == "1"
    if not forced and await current_session(request, svc.sessions) is not None:
        return _redirect(next_path or "/account")
    hint = request.query_params.get("login_hint", "")
    # After a password reset: say that it worked (the reset itself signs no one in).
    reset = request.query_params.get("reset") == "1"
    query = request.query_params
    notice = next(
        (text for (key, value), text in LOGIN_NOTICES.items() if query.get(key) == value), None
    )
    return login_page(request, email=hint, next_path=next_path, reset=reset, notice=notice)


@router.post("/login")
async def login_submit(request: Request, svc: ServicesDep) -> Response:
    form = await _checked_form(request, N_("Sign-in failed"))
    if isinstance(form, Response):
        return form
    email = form.get("email", "")
    password = form.get("password", "")
    next_path = safe_next(form.get("next"))
    if (
        not email
        or not password
        or len(email) > MAX_EMAIL_LENGTH
        or len(password) > MAX_PASSWORD_LENGTH
    ):
        # No account can match: answer as for a wrong password, without hashing a
        # megabyte (E1) or touching the throttle on input a form never sends.
        return login_page(request, email=email, next_path=next_path, error=LOGIN_FAILED)
    device = request.cookies.get(DEVICE_COOKIE)
    try:
        # argon2 never runs on the event loop (E1): it runs on
        # the hasher's own threads. The device cookie picks the failure window (S12).
        user = await svc.accounts.authenticate(
            email, password, client_ip(request), browser=BrowserLogin(device)
        )
    except EmailNotVerified:
        # L7: the right password, so the address may be told how to go on.
        return login_page(
            request, email=email, next_path=next_path, error=UNVERIFIED, unverified=True
        )
    except AuthenticationFailed:
        # E3: one message, status and page for unknown account and wrong password.
        return login_page(request, email=email, next_path=next_path, error=LOGIN_FAILED)
    except Throttled as exc:
        # E4: the same per-account and per-IP limits as the token endpoint.
        return login_page(
            request,
            email=email,
            next_path=next_path,
            error=N_("Too many sign-in attempts. Wait a little and try again."),
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except SecondFactorRequired as needed:
        # M6: the password was right; the second step decides. A half-login only,
        # which keeps when the password was checked: the session's auth_time later.
        return await begin_second_step(
            request, svc, needed, auth_time=int(time.time()), next_path=next_path
        )
    auth_time = int(time.time())
    return await complete_login(request, svc, user.id, auth_time=auth_time, next_path=next_path)


@router.get("/logout")
async def logout_confirm(request: Request, svc: ServicesDep) -> Response:
    session = await current_session(request, svc.sessions)
    if session is None:
        return _redirect("/login")
    # F4: GET only asks; a link or an <img> elsewhere cannot sign anyone out.
    context: dict[str, Any] = {"email": session.user.email}
    cookies = Response()
    context["csrf_token"] = issue_csrf(cookies, request)
    return render(request, "logout.html", context, response=cookies)


@router.post("/logout")
async def logout_submit(request: Request, svc: ServicesDep) -> Response:
    form = await _checked_form(request, N_("Sign-out failed"))
    if isinstance(form, Response):
        return form
    raw_id = request.cookies.get(SESSION_COOKIE)
    if raw_id:
        # F5: the row goes, so a copy of the cookie opens nothing afterwards.
        ip = client_ip(request)
        await anyio.to_thread.run_sync(lambda: svc.sessions.end(raw_id, ip=ip))
    response = _redirect("/login")
    clear_session_cookie(response)
    return response


async def csrf_rejected(request: Request, exc: Exception) -> Response:
    """Exception handler for CsrfRejected: an HTML 403 for the pages and the
    consent form, instead of the API's problem JSON."""
    message = exc.detail if isinstance(exc, CsrfRejected) else N_("Forbidden.")
    return _error(request, 403, N_("This request was refused"), message)
