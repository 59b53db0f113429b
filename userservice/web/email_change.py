"""Hosted pages of the mailed email-change links: confirm the new address (L20),
undo the change from the old one (L21). A GET never uses a token (mail scanners
prefetch links): it checks the link and shows a button, whose POST (CSRF token and
origin checked, F4) uses it once and shows the outcome. And the account page's
address change with a passkey in place of the code (M7, M9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    Conflict,
    Forbidden,
    InvalidAccountToken,
    InvalidInput,
    InvalidPasskey,
    PasskeysUnavailable,
    SecondFactorNeeded,
    Throttled,
)
from userservice.i18n import N_
from userservice.security.response_floor import at_floor
from userservice.services.account_tokens import LINK_INVALID
from userservice.services.email_change import SAME_ADDRESS, UNDO_PENDING
from userservice.services.emails import MAX_EMAIL_LENGTH
from userservice.services.sessions import BrowserSession
from userservice.web.account import signed_in, throttled_refusal
from userservice.web.account_page import NO_PASSWORD, WRONG_PASSWORD, Refusal, account_page
from userservice.web.browser import SESSION_COOKIE, issue_csrf
from userservice.web.forms import checked_form, redirect
from userservice.web.journeys import BAD_EMAIL, LINK_TITLE
from userservice.web.locale import page_locale
from userservice.web.passkey_views import answer_of
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
TEMPLATE = "email_change.html"
# The account page's passkey form for a new address, its fields' error keys.
PASSKEY_EMAIL, PASSKEY_PASSWORD, PASSKEY = (
    "passkey_email",
    "passkey_email_password",
    "email_passkey",
)
PASSKEY_REFUSED = N_(
    "The passkey could not be used: the request was cancelled, took too long, or the "
    "passkey is not one of this account's. Try again."
)


def _page(request: Request, state: str, status: int = 200, **context: Any) -> Response:
    cookies = Response()
    values = {"state": state, "token": "", **context, "csrf_token": issue_csrf(cookies, request)}
    return render(request, TEMPLATE, values, status_code=status, response=cookies)


def _refused(request: Request) -> Response:
    # The one text of every refused link, as the services refuse it (E8).
    return _page(request, "invalid", 400, refused=LINK_INVALID)


async def _offer(request: Request, check: Callable[[str], None], state: str) -> Response:
    token = request.query_params.get("token", "")
    try:
        # A read only: the button is offered for a usable link, which stays unused.
        await anyio.to_thread.run_sync(check, token)
    except InvalidAccountToken:
        return _refused(request)
    return _page(request, state, token=token)


@router.get("/confirm-email-change")
async def confirm_form(request: Request, svc: ServicesDep) -> Response:
    return await _offer(request, svc.email_change.check, "confirm")


@router.post("/confirm-email-change")
async def confirm_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, LINK_TITLE)
    if isinstance(form, Response):
        return form
    token, ip = form.get("token", ""), client_ip(request)
    try:
        email = await anyio.to_thread.run_sync(lambda: svc.email_change.confirm(token, ip=ip))
    except InvalidAccountToken:
        return _refused(request)
    # The language switch of a result page goes on, not back to the used link.
    return _page(request, "changed", email=email, here="/account")


@router.get("/undo-email-change")
async def undo_form(request: Request, svc: ServicesDep) -> Response:
    return await _offer(request, svc.email_change.check_undo, "undo")


@router.post("/undo-email-change")
async def undo_submit(request: Request, svc: ServicesDep) -> Response:
    form = await checked_form(request, LINK_TITLE)
    if isinstance(form, Response):
        return form
    token, ip, locale = form.get("token", ""), client_ip(request), page_locale(request)
    try:
        await anyio.to_thread.run_sync(lambda: svc.email_change.undo(token, ip=ip, locale=locale))
    except InvalidAccountToken:
        return _refused(request)
    # L21: every session ended with the undo, this browser's too; nobody is signed in.
    return _page(request, "undone", here="/login")


@router.post("/account/email/passkey")
async def change_with_passkey(request: Request, svc: ServicesDep) -> Response:
    """M7, M9: a new address with the current password and one of the account's
    passkeys instead of the code. The answer must carry a challenge bound to this
    browser's session; its proof then stands for the code in the service's one
    M7 rule. L20 as on the code form: one answer, at one time, either way."""
    found = await signed_in(request, svc)
    if isinstance(found, Response):
        return found
    form, session = found
    email, password = form.get("email", "").strip(), form.get("current_password", "")
    typed = {"email": email[:MAX_EMAIL_LENGTH]}
    answer, raw_id = answer_of(form), request.cookies.get(SESSION_COOKIE, "")
    if not 0 < len(email) <= MAX_EMAIL_LENGTH:
        return await _passkey_refusal(request, svc, session, PASSKEY_EMAIL, BAD_EMAIL, typed)
    if not password:
        return await _passkey_refusal(request, svc, session, PASSKEY_PASSWORD, NO_PASSWORD, typed)
    user_id, ip, locale = session.user.id, client_ip(request), page_locale(request)
    try:
        if answer is None:
            raise InvalidPasskey("unreadable answer")
        proof = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.verify_confirmation(user_id, answer, raw_id, ip=ip)
        )
    except (InvalidPasskey, PasskeysUnavailable):
        return await _passkey_refusal(request, svc, session, PASSKEY, PASSKEY_REFUSED, typed)
    ask = svc.email_change.request
    refusal: Refusal | None = None
    try:
        await at_floor(
            lambda: ask(user_id, email, password, ip=ip, locale=locale, passkey=proof),
            what="POST /account/email/passkey",
        )
    except SecondFactorNeeded:
        refusal = Refusal({PASSKEY: PASSKEY_REFUSED}, typed)
    except Forbidden:
        refusal = Refusal({PASSKEY_PASSWORD: WRONG_PASSWORD}, typed)
    except Conflict:
        refusal = Refusal({PASSKEY_EMAIL: UNDO_PENDING}, typed)
    except InvalidInput as exc:
        shown = SAME_ADDRESS if exc.detail == SAME_ADDRESS else BAD_EMAIL
        refusal = Refusal({PASSKEY_EMAIL: shown}, typed)
    except Throttled as exc:
        refusal = throttled_refusal(PASSKEY_PASSWORD, exc)
        refusal.typed = typed
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    return redirect("/account?done=email-sent")


async def _passkey_refusal(
    request: Request,
    svc: Services,
    session: BrowserSession,
    field: str,
    message: str,
    typed: dict[str, str],
) -> Response:
    return await account_page(request, svc, session, refusal=Refusal({field: message}, typed))
