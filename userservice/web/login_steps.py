"""The end of every hosted sign-in, in one place: after the password alone (an
account without a second factor) or after the second step (M6). The browser
gets a new session id (F2), the session says how it was proven (M5), and the
device cookie is issued only now, after the whole login (S12). And what the
steps' pages share: the half-login they read, the code they take."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import Request
from fastapi.responses import Response

from userservice.errors import SecondFactorRequired
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.half_logins import HalfLoginState
from userservice.web.browser import (
    DEVICE_COOKIE,
    HALF_LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_half_login_cookie,
    issue_csrf,
    safe_next,
    set_device_cookie,
    set_half_login_cookie,
    set_session_cookie,
)
from userservice.web.forms import redirect
from userservice.web.templating import render
from userservice.wiring import Services, client_ip

SECOND_FACTOR_PAGE = "/login/second-factor"
ENROL_PAGE = "/login/enrol"
# The longest code anyone types: a recovery code with its dashes, and spaces.
MAX_CODE_LENGTH = 64


async def complete_login(
    request: Request,
    svc: Services,
    user_id: uuid.UUID,
    *,
    auth_time: int,
    next_path: str | None,
    amr: tuple[str, ...] = PASSWORD_ONLY,
) -> Response:
    """A 303 to `next_path` (or the account page) carrying the new session."""
    response = redirect(next_path or "/account")
    await start_session(request, svc, user_id, response, auth_time=auth_time, amr=amr)
    return response


async def start_session(
    request: Request,
    svc: Services,
    user_id: uuid.UUID,
    response: Response,
    *,
    auth_time: int,
    amr: tuple[str, ...],
) -> None:
    """The session and device cookies of a finished login, set on `response`."""
    previous = request.cookies.get(SESSION_COOKIE)
    ip, agent = client_ip(request), request.headers.get("user-agent")
    raw_id = await anyio.to_thread.run_sync(
        lambda: svc.sessions.start(user_id, auth_time, user_agent=agent, ip=ip, amr=amr)
    )
    if previous:
        # F2: whatever session id the browser held before is dead after login.
        await anyio.to_thread.run_sync(lambda: svc.sessions.end(previous, ip=ip, how="replaced"))
    set_session_cookie(response, raw_id)
    if request.cookies.get(HALF_LOGIN_COOKIE):
        clear_half_login_cookie(response)
    devices = svc.accounts.devices
    device_cookie = devices.issue(user_id, devices.read(request.cookies.get(DEVICE_COOKIE)))
    if device_cookie is not None:
        set_device_cookie(response, device_cookie)


async def begin_second_step(
    request: Request,
    svc: Services,
    needed: SecondFactorRequired,
    *,
    auth_time: int,
    next_path: str | None,
) -> Response:
    """M6: the password was right, the account needs a second step. The browser
    gets a half-login, which grants nothing, and no session (and no device cookie:
    the password alone proved too little to mark this browser as known, S12)."""
    ip = client_ip(request)
    earlier = request.cookies.get(HALF_LOGIN_COOKIE)
    if earlier:
        # As F2 for sessions: a half-login id the browser held before is dead now.
        await anyio.to_thread.run_sync(lambda: svc.half_logins.finish(earlier))
    raw_id = await anyio.to_thread.run_sync(
        lambda: svc.half_logins.start(needed.user_id, needed.step, auth_time, next_path, ip=ip)
    )
    response = redirect(ENROL_PAGE if needed.step == "enrol" else SECOND_FACTOR_PAGE)
    set_half_login_cookie(response, raw_id)
    return response


def back_to_login(notice: str | None = None, next_path: str | None = None) -> Response:
    """The half-login is over without a session: the sign-in page again, with a
    notice by a fixed key (F7: never text from a query) and the way back kept."""
    params: list[tuple[str, str]] = []
    if next_path and safe_next(next_path):
        params.append(("next", next_path))
    if notice:
        params.append((notice, "1"))
    response = redirect("/login?" + urlencode(params) if params else "/login")
    clear_half_login_cookie(response)
    return response


async def half_login(
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


def typed_code(form: dict[str, str]) -> str:
    """The code field, trimmed and bounded (M1: a guess costs its length only)."""
    return form.get("code", "").strip()[:MAX_CODE_LENGTH]


def step_form_page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page of the sign-in's steps with a fresh CSRF token (F4)."""
    cookies = Response()
    values = {"csrf_token": issue_csrf(cookies, request), "error": None, **context}
    return render(request, name, values, status_code=status, response=cookies, headers=headers)
