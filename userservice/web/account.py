"""The account page (/account): the user's name, address, password, sessions, apps,
data and the account itself. No script: each action is a form with the CSRF token
and the origin check (F4), answered by a 303 back to the page with a fixed notice
(A7), or by the page again with the form's errors. A session that ended meanwhile
(another tab signed out everywhere) is sent to the sign-in page."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from userservice.errors import (
    Conflict,
    Forbidden,
    InvalidCode,
    InvalidInput,
    NotFound,
    SecondFactorNeeded,
    Throttled,
    WeakPassword,
)
from userservice.i18n import N_
from userservice.security.response_floor import at_floor
from userservice.services.accounts import ProfileChanges
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.email_change import SAME_ADDRESS, UNDO_PENDING
from userservice.services.emails import MAX_EMAIL_LENGTH
from userservice.services.sessions import BrowserSession
from userservice.web.account_page import (
    BAD_CODE,
    NO_CODE,
    NO_NEW_PASSWORD,
    NO_PASSWORD,
    NOT_CONFIRMED,
    TOO_MANY,
    WRONG_PASSWORD,
    Refusal,
    account_page,
)
from userservice.web.browser import (
    SESSION_COOKIE,
    clear_session_cookie,
    current_session,
    login_url,
    set_session_cookie,
)
from userservice.web.forms import checked_form, redirect
from userservice.web.journeys import BAD_EMAIL, BAD_NAME, MAX_NAME_LENGTH
from userservice.web.locale import page_locale
from userservice.web.second_factor import MAX_CODE_LENGTH
from userservice.web.templating import PAGE_HEADERS
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("Your account could not be changed")


def to_login() -> Response:
    return redirect(login_url("/account"))


async def signed_in(
    request: Request, svc: Services, failure_title: str = FAILED
) -> tuple[dict[str, str], BrowserSession] | Response:
    """A POST's form and session, or the answer to send instead: the error page for
    a refused form (CSRF, F4), the sign-in page for a session that is gone."""
    form = await checked_form(request, failure_title)
    if isinstance(form, Response):
        return form
    session = await current_session(request, svc.sessions)
    if session is None:
        return to_login()
    return form, session


async def checked_password(
    request: Request, svc: Services, session: BrowserSession, password: str, field: str
) -> Refusal | None:
    """The current password, checked off the event loop (argon2, E1) and throttled
    like a sign-in (E4)."""
    if not password:
        return Refusal({field: NO_PASSWORD})
    check = svc.accounts.require_current_password
    try:
        await anyio.to_thread.run_sync(check, session.user.id, password)
    except Forbidden:
        return Refusal({field: WRONG_PASSWORD})
    except Throttled as exc:
        return throttled_refusal(field, exc)
    return None


def throttled_refusal(field: str, exc: Throttled) -> Refusal:
    return Refusal({field: TOO_MANY}, status=429, headers={"Retry-After": str(exc.retry_after)})


@router.get("/account")
async def account(request: Request, svc: ServicesDep) -> Response:
    session = await current_session(request, svc.sessions)
    if session is None:
        return to_login()
    return await account_page(request, svc, session)


@router.post("/account/profile")
async def change_name(request: Request, svc: ServicesDep) -> Response:
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    form, session = found
    name = form.get("display_name", "").strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        typed = {"display_name": name[:MAX_NAME_LENGTH]}
        return await account_page(
            request, svc, session, refusal=Refusal({"display_name": BAD_NAME}, typed)
        )
    changes = ProfileChanges(display_name=name or None)
    await anyio.to_thread.run_sync(svc.accounts.update_profile, session.user.id, changes)
    return redirect("/account?done=profile")


@router.post("/account/email")
async def change_email(request: Request, svc: ServicesDep) -> Response:
    """L20: nothing changes until the new address opens its link; the answer is the
    same whether or not another account has that address."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    form, session = found
    email, password = form.get("email", "").strip(), form.get("current_password", "")
    typed = {"email": email[:MAX_EMAIL_LENGTH]}
    refusal: Refusal | None = None
    if not 0 < len(email) <= MAX_EMAIL_LENGTH:
        refusal = Refusal({"email": BAD_EMAIL}, typed)
    elif not password:
        refusal = Refusal({"email_password": NO_PASSWORD}, typed)
    else:
        ip, locale = client_ip(request), page_locale(request)
        # Trimmed and bounded as on the sign-in's code page (M7, M1).
        ask, code = svc.email_change.request, form.get("code", "").strip()[:MAX_CODE_LENGTH] or None
        try:
            # L20: a taken address (a notice to its owner) and a free one (a link)
            # answer at one time, the floor.
            await at_floor(
                lambda: ask(session.user.id, email, password, ip=ip, locale=locale, code=code),
                what="POST /account/email",
            )
        except SecondFactorNeeded:
            # M7: the password alone does not move the account to another address.
            refusal = Refusal({"email_code": NO_CODE}, typed)
        except InvalidCode:
            refusal = Refusal({"email_code": BAD_CODE}, typed)
        except Forbidden:
            refusal = Refusal({"email_password": WRONG_PASSWORD}, typed)
        except Conflict:
            refusal = Refusal({"email": UNDO_PENDING}, typed)
        except InvalidInput as exc:
            # Only these two texts are ours to show; a parser's detail is not.
            shown = SAME_ADDRESS if exc.detail == SAME_ADDRESS else BAD_EMAIL
            refusal = Refusal({"email": shown}, typed)
        except Throttled as exc:
            # With a code sent, the code's own limit (M1) is the likely one: the
            # password's (E4) counts wrong passwords only. Without a code only the
            # password was checked.
            refusal = throttled_refusal("email_code" if code else "email_password", exc)
            refusal.typed = typed
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    return redirect("/account?done=email-sent")


@router.post("/account/password")
async def change_password(request: Request, svc: ServicesDep) -> Response:
    """L28: the current password first; every session and token ends with the
    change (E7), and this browser goes on in a new session with a new id."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    form, session = found
    current, new = form.get("current_password", ""), form.get("new_password", "")
    refusal: Refusal | None = None
    if not current:
        refusal = Refusal({"current_password": NO_PASSWORD})
    elif not new:
        refusal = Refusal({"new_password": NO_NEW_PASSWORD})
    else:
        changes = ProfileChanges(new_password=new, current_password=current)
        try:
            await anyio.to_thread.run_sync(svc.accounts.update_profile, session.user.id, changes)
        except WeakPassword as exc:
            refusal = Refusal({"new_password": exc.detail})
        except Forbidden:
            refusal = Refusal({"current_password": WRONG_PASSWORD})
        except Throttled as exc:
            refusal = throttled_refusal("current_password", exc)
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    response = redirect("/account?done=password")
    # The password was just proven; how the session was first made (its second
    # factor, M5) still holds for the new one.
    await continue_in_new_session(request, svc, session.user.id, response, amr=session.amr)
    return response


async def continue_in_new_session(
    request: Request,
    svc: Services,
    user_id: uuid.UUID,
    response: Response,
    *,
    amr: tuple[str, ...] = PASSWORD_ONLY,
) -> None:
    """After a change that ended every session (E7, M3): this browser goes on in
    a new one with a new id (F2), whose amr (M5) says how it was just proven."""
    ip, agent = client_ip(request), request.headers.get("user-agent")
    raw_id = await anyio.to_thread.run_sync(
        lambda: svc.sessions.start(user_id, int(time.time()), user_agent=agent, ip=ip, amr=amr)
    )
    previous = request.cookies.get(SESSION_COOKIE)
    await anyio.to_thread.run_sync(lambda: svc.sessions.end(previous, ip=ip, how="replaced"))
    set_session_cookie(response, raw_id)


@router.post("/account/sessions/end-all")
async def end_all_sessions(request: Request, svc: ServicesDep) -> Response:
    """L23: every session (this one too), refresh token and access token."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    _form, session = found
    ip = client_ip(request)
    await anyio.to_thread.run_sync(lambda: svc.sessions.end_everywhere(session.user.id, ip=ip))
    response = redirect("/login?signed_out=everywhere")
    clear_session_cookie(response)
    return response


@router.post("/account/sessions/{handle}/end")
async def end_session(request: Request, handle: str, svc: ServicesDep) -> Response:
    """L22: only the user's own sessions; one already gone is no error."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    _form, session = found
    ip = client_ip(request)
    with contextlib.suppress(NotFound):
        await anyio.to_thread.run_sync(
            lambda: svc.sessions.end_by_handle(session.user.id, handle, ip=ip)
        )
    return redirect("/account?done=session-ended")


@router.post("/account/grants/{client_id}/revoke")
async def revoke_grant(request: Request, client_id: str, svc: ServicesDep) -> Response:
    """A9, L24: withdraw an app's access (as DELETE /users/me/grants/{client_id})."""
    found = await signed_in(request, svc, N_("Could not withdraw access"))
    if isinstance(found, Response):
        return found
    _form, session = found
    ip = client_ip(request)
    # Already withdrawn (a second tab, a double click) is fine: the page shows the truth.
    with contextlib.suppress(NotFound):
        await anyio.to_thread.run_sync(
            lambda: svc.consents.revoke(session.user.id, client_id, ip=ip)
        )
    return redirect("/account?done=app-withdrawn")


@router.get("/account/export")
async def export(request: Request, svc: ServicesDep) -> Response:
    """GDPR art. 15 and 20: the user's data as a JSON file (L26)."""
    session = await current_session(request, svc.sessions)
    if session is None:
        return to_login()
    data: dict[str, Any] = await anyio.to_thread.run_sync(svc.privacy.export, session.user.id)
    disposition = 'attachment; filename="account-data.json"'
    headers = {**PAGE_HEADERS, "Content-Disposition": disposition}
    return JSONResponse(jsonable_encoder(data), headers=headers)


@router.post("/account/delete")
async def delete_account(request: Request, svc: ServicesDep) -> Response:
    """L29: the current password, and the box ticked; then L27's erasure."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    form, session = found
    if form.get("confirm") != "yes":
        refusal: Refusal | None = Refusal({"confirm": NOT_CONFIRMED})
    else:
        password = form.get("current_password", "")
        refusal = await checked_password(request, svc, session, password, "delete_password")
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    ip = client_ip(request)
    user_id = session.user.id
    await anyio.to_thread.run_sync(lambda: svc.privacy.erase(user_id, actor_id=user_id, ip=ip))
    response = redirect("/login?deleted=1")
    clear_session_cookie(response)
    return response
