"""POST /language: the language switch on every hosted page (a form, no script)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from userservice.i18n import LOCALES, N_
from userservice.web.browser import current_session, safe_next
from userservice.web.forms import checked_form, error_page, redirect
from userservice.web.locale import set_language_cookie, with_ui_locales
from userservice.wiring import ServicesDep

router = APIRouter(include_in_schema=False)


@router.post("/language")
async def choose_language(request: Request, svc: ServicesDep) -> Response:
    # F8: a cross-site form could otherwise flip a victim's language (and the
    # language of the mails their account receives).
    form = await checked_form(request, N_("The language could not be changed"))
    if isinstance(form, Response):
        return form
    locale = form.get("locale", "")
    if locale not in LOCALES:
        # F9: only a language we offer reaches the cookie, the account or a page.
        return error_page(
            request,
            400,
            N_("The language could not be changed"),
            N_("This language is not offered."),
        )
    back = safe_next(with_ui_locales(safe_next(form.get("return_to")) or "/account", locale))
    response = redirect(back or "/account")
    set_language_cookie(response, locale)
    session = await current_session(request, svc.sessions)
    if session is not None:
        await anyio.to_thread.run_sync(svc.preferences.set_locale, session.user.id, locale)
    return response
