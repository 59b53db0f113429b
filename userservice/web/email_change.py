"""Hosted pages of the mailed email-change links: confirm the new address (L20),
undo the change from the old one (L21). A GET never uses a token (mail scanners
prefetch links): it checks the link and shows a button, whose POST (CSRF token and
origin checked, F4) uses it once and shows the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import InvalidAccountToken
from userservice.services.account_tokens import LINK_INVALID
from userservice.web.browser import issue_csrf
from userservice.web.forms import checked_form
from userservice.web.journeys import LINK_TITLE
from userservice.web.locale import page_locale
from userservice.web.templating import render
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
TEMPLATE = "email_change.html"


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
