"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app sends the
user here to sign out, and may get them back at a registered URI."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import anyio
from authlib.common.urls import add_params_to_uri
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from userservice.i18n import N_
from userservice.oauth.adapter import MalformedRequest, snapshot
from userservice.security.jwt import TokenInvalid
from userservice.web.browser import (
    SESSION_COOKIE,
    check_csrf,
    clear_session_cookie,
    current_session,
    issue_csrf,
)
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep

router = APIRouter(include_in_schema=False)
PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


def _error(request: Request, message: str, *, detail: str | None = None) -> Response:
    # Like /oauth/authorize: an unvalidated return URI is never followed (open redirect).
    return render(
        request,
        "error.html",
        {"title": N_("Sign-out link not valid"), "message": message, "detail": detail},
        status_code=400,
    )


def _client_of(svc: Services, values: dict[str, str]) -> str | Exception | None:
    """The client the request speaks for: client_id, or the audience of the hint."""
    client_id = values.get("client_id") or None
    hint = values.get("id_token_hint")
    if hint:
        try:
            claims = svc.keys.ring.signed_claims(hint)
        except TokenInvalid:
            return ValueError(N_("The id_token_hint was not issued here."))
        audience = claims.get("aud")
        if client_id and audience != client_id:
            return ValueError(N_("The id_token_hint belongs to another client."))
        client_id = audience if isinstance(audience, str) else None
    return client_id


@router.api_route("/oauth/logout", methods=["GET", "POST"])
async def end_session(request: Request, svc: ServicesDep) -> Response:
    try:
        snap = await snapshot(request)
    except MalformedRequest as exc:
        # The reason is for the app's developer: shown as it is, in English.
        return _error(request, N_("The request could not be read."), detail=str(exc))
    if snap.values.repeated():
        return _error(request, N_("A parameter is repeated."))
    values = {name: snap.values[name] for name in PARAMS if snap.values.get(name)}
    client_id = _client_of(svc, values)
    if isinstance(client_id, Exception):
        return _error(request, str(client_id))
    target = values.get("post_logout_redirect_uri")
    if target:
        client = await svc.clients.registration(client_id or "")
        if client is None or target not in client.post_logout_redirect_uris:
            return _error(request, N_("That return address is not registered for the app."))
    if request.method == "GET":
        return await _confirm(request, svc, values)
    check_csrf(request, snap.form.get("csrf_token", ""))
    raw_id = request.cookies.get(SESSION_COOKIE)
    if raw_id:
        await anyio.to_thread.run_sync(svc.sessions.end, raw_id)
    destination = "/login"
    if target:
        state = values.get("state")
        destination = add_params_to_uri(target, [("state", state)]) if state else target
    response = RedirectResponse(destination, status_code=303)
    clear_session_cookie(response)
    return response


async def _confirm(request: Request, svc: Services, values: dict[str, str]) -> Response:
    # Logging out by GET alone would let any page sign users out (F4): ask first.
    session = await current_session(request, svc.sessions)
    context: dict[str, Any] = {
        "email": session.user.email if session else None,
        "action": "/oauth/logout?" + urlencode(values),
    }
    response = render(request, "end_session.html", context)
    context["csrf_token"] = issue_csrf(response, request)
    return render(request, "end_session.html", context, response=response)
