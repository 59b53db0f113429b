"""Passkeys on the account page (M9): add one (the current password, then the
browser makes the key), rename one, remove one (the current password). Adding
or removing ends every session and token of the account in the service; this
browser goes on in a new session (F2) as after an app change. Forms carry the
CSRF token and pass the origin check (F4); the password is checked off the event
loop and throttled like a sign-in (E1, E4)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidInput,
    InvalidPasskey,
    NotFound,
    PasskeysUnavailable,
)
from userservice.i18n import N_
from userservice.services.assurance import PASSWORD_ONLY
from userservice.web.account import checked_password, continue_in_new_session, signed_in
from userservice.web.account_page import Refusal, account_page
from userservice.web.browser import SESSION_COOKIE, issue_csrf
from userservice.web.forms import redirect
from userservice.web.locale import page_locale
from userservice.web.passkey_views import answer_of, page_options, passkey_name
from userservice.web.templating import render
from userservice.wiring import ServicesDep, client_ip

router = APIRouter(include_in_schema=False)
FAILED = N_("The passkey could not be changed")
SECTION = "passkeys"
BAD_NAME = N_("Give the passkey a name of at most 64 characters.")
UNVERIFIED = N_("Verify your email address first: only a confirmed address may add a passkey.")
NOT_ADDED = N_(
    "The passkey could not be added: the answer did not verify, took too long, or the "
    "passkey is registered already. Try again."
)
KEEP_ONE = N_(
    "Your account must keep a second factor: add another passkey or an authenticator app "
    "before you remove this one."
)
BACK = "/account#passkeys"


def _key_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@router.post("/account/passkeys/add")
async def add_start(request: Request, svc: ServicesDep) -> Response:
    """The password first (M9: recent authentication); only then are options made,
    so their challenge, single use and expiring, stands for that check."""
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    name = passkey_name(form)
    refusal: Refusal | None = None
    if name is None:
        refusal = Refusal({"passkey_name": BAD_NAME})
    else:
        password = form.get("current_password", "")
        refusal = await checked_password(request, svc, session, password, "passkey_password")
    if refusal is not None or name is None:
        return await account_page(request, svc, session, refusal=refusal)
    user_id, raw_id = session.user.id, request.cookies.get(SESSION_COOKIE, "")
    try:
        # M9: the challenge is bound to this browser's session too: another session
        # of the account (another device) cannot answer it.
        options = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.registration_options(user_id, session_id=raw_id)
        )
    except EmailNotVerified:
        return await account_page(
            request, svc, session, refusal=Refusal({SECTION: UNVERIFIED}, status=403)
        )
    except PasskeysUnavailable:
        return redirect(BACK)
    cookies = Response()
    context: dict[str, Any] = {
        "passkey_options": page_options(options),
        "name": name,
        "passkey_error": None,
        "csrf_token": issue_csrf(cookies, request),
        "here": BACK,
    }
    return render(request, "account_passkey_add.html", context, response=cookies)


@router.post("/account/passkeys")
async def add_finish(request: Request, svc: ServicesDep) -> Response:
    """M9: the answer must carry the challenge made for this account after its
    password; a refusal sends the account page back (a new try asks the password
    again, so no challenge is made without it)."""
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    name, answer = passkey_name(form), answer_of(form)
    user_id, ip, locale = session.user.id, client_ip(request), page_locale(request)
    raw_id = request.cookies.get(SESSION_COOKIE, "")
    if name is None or answer is None:
        refusal = Refusal({SECTION: NOT_ADDED})
        return await account_page(request, svc, session, refusal=refusal)
    try:
        added = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.register(
                user_id, answer, name, ip=ip, locale=locale, session_id=raw_id
            )
        )
    except (InvalidPasskey, Conflict, InvalidInput):
        refusal = Refusal({SECTION: NOT_ADDED})
        return await account_page(request, svc, session, refusal=refusal)
    except EmailNotVerified:
        refusal = Refusal({SECTION: UNVERIFIED}, status=403)
        return await account_page(request, svc, session, refusal=refusal)
    # A key made just now proves nothing beyond how this session was proven (M5):
    # the new session keeps that amr.
    codes = added.recovery_codes
    if codes is None:
        response: Response = redirect("/account?done=passkey-added#passkeys")
        await continue_in_new_session(request, svc, user_id, response, amr=session.amr)
        return response
    response = Response()
    await continue_in_new_session(request, svc, user_id, response, amr=session.amr)
    context: dict[str, Any] = {
        "recovery_codes": codes,
        # Codes come only with a first factor: this passkey is the account's only one.
        "codes_for": "passkey",
        "csrf_token": issue_csrf(response, request),
        "here": BACK,
    }
    return render(request, "account_passkey_added.html", context, response=response)


@router.post("/account/passkeys/{key}/rename")
async def rename(key: str, request: Request, svc: ServicesDep) -> Response:
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    key_id, name = _key_id(key), passkey_name(form)
    if key_id is None:
        return redirect(BACK)
    if name is None:
        refusal = Refusal({f"passkey_name_{key_id}": BAD_NAME})
        return await account_page(request, svc, session, refusal=refusal)
    ip, user_id = client_ip(request), session.user.id
    try:
        await anyio.to_thread.run_sync(lambda: svc.passkeys.rename(user_id, key_id, name, ip=ip))
    except NotFound:
        # Another's key, or one removed in another tab: the page shows the truth.
        return redirect(BACK)
    except InvalidInput:
        refusal = Refusal({f"passkey_name_{key_id}": BAD_NAME})
        return await account_page(request, svc, session, refusal=refusal)
    return redirect("/account?done=passkey-renamed#passkeys")


@router.post("/account/passkeys/{key}/remove")
async def remove(key: str, request: Request, svc: ServicesDep) -> Response:
    """M9: the current password; every session and token ends (the one a stolen
    key may have made, too); this browser goes on with the password alone (M5)."""
    found = await signed_in(request, svc, FAILED)
    if isinstance(found, Response):
        return found
    form, session = found
    key_id = _key_id(key)
    if key_id is None:
        return redirect(BACK)
    password = form.get("current_password", "")
    field = f"passkey_password_{key_id}"
    refusal = await checked_password(request, svc, session, password, field)
    if refusal is not None:
        return await account_page(request, svc, session, refusal=refusal)
    ip, locale, user_id = client_ip(request), page_locale(request), session.user.id
    try:
        await anyio.to_thread.run_sync(
            lambda: svc.passkeys.remove(user_id, key_id, ip=ip, locale=locale)
        )
    except NotFound:
        return redirect(BACK)
    except Conflict:
        # M13: the sign-in rule requires a factor and this is the last one.
        refusal = Refusal({SECTION: KEEP_ONE}, status=409)
        return await account_page(request, svc, session, refusal=refusal)
    response = redirect("/account?done=passkey-removed#passkeys")
    await continue_in_new_session(request, svc, user_id, response, amr=PASSWORD_ONLY)
    return response
