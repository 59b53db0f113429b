"""GET/POST /oauth/authorize: the authorization-code flow's front door (RFC 6749
§4.1, RFC 7636, OIDC Core §3.1.2), with our login and consent pages."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import anyio
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from userservice.i18n import N_
from userservice.oauth.adapter import MalformedRequest, RequestSnapshot, snapshot
from userservice.oauth.errors import error_description
from userservice.oauth.models import AuthorizingUser
from userservice.oauth.server import OAuthServer
from userservice.services.assurance import required_level, satisfies
from userservice.services.scopes import describe
from userservice.web.browser import check_csrf, current_session, issue_csrf, login_url
from userservice.web.templating import render
from userservice.wiring import Services, ServicesDep, client_ip

router = APIRouter(include_in_schema=False)


def _error_page(
    request: Request, message: str, status: int = 400, *, detail: str | None = None
) -> Response:
    # A1/A2: before client and redirect URI are validated, errors stay on our side.
    return render(
        request,
        "error.html",
        {"title": N_("This sign-in link is not valid"), "message": message, "detail": detail},
        status_code=status,
    )


def _redirect_error(
    server: OAuthServer, redirect_uri: str, error: str, state: str | None
) -> Response:
    params = [("error", error), ("error_description", error_description(error))]
    if state:
        params.append(("state", state))
    params.append(("iss", server.issuer))  # RFC 9207 §2: errors too
    return RedirectResponse(add_params_to_uri(redirect_uri, params), status_code=302)


# The consent form's own fields, never part of the authorization request.
_CONSENT_FIELDS = frozenset({"csrf_token", "decision"})


def _without_prompt(snap: RequestSnapshot) -> str:
    # After the login the request goes on without prompt=login and max_age, or it
    # would loop (max_age=0 is always "too old"); other prompt values stay.
    # OIDC Core §3.1.2.1: a request may come as a POST form; the way back is a
    # GET holding its parameters too, or the login would return to nothing.
    pairs = [(k, v) for k, values in snap.query.lists.items() for v in values]
    pairs += [
        (k, v) for k, values in snap.form.lists.items() if k not in _CONSENT_FIELDS for v in values
    ]
    query: list[tuple[str, str]] = []
    for key, value in pairs:
        kept = " ".join(p for p in value.split() if p != "login") if key == "prompt" else value
        if key != "max_age" and kept:
            query.append((key, kept))
    return "/oauth/authorize?" + urlencode(query)


@router.api_route("/oauth/authorize", methods=["GET", "POST"])
async def authorize(request: Request, svc: ServicesDep) -> Response:
    server, consents = svc.oauth_server, svc.consents
    try:
        snap = await snapshot(request)
    except MalformedRequest as exc:
        # The reason is for the app's developer: shown as it is, in English.
        return _error_page(request, N_("The request could not be read."), detail=str(exc))
    session = await current_session(request, svc.sessions)
    user = AuthorizingUser(session.user, session.auth_time, session.amr) if session else None
    try:
        grant = await anyio.to_thread.run_sync(server.get_consent_grant, snap, user)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _redirect_error(
                server, error.redirect_uri, error.error, snap.values.get("state")
            )
        # S7: the code's fixed text; Authlib's own would quote the request.
        return _error_page(request, error_description(str(error.error)))

    redirect_uri = grant.redirect_uri
    state = snap.values.get("state")
    prompt = set(snap.values.get("prompt", "").split())
    if "none" in prompt and len(prompt) > 1:
        return _redirect_error(server, redirect_uri, "invalid_request", state)
    if user is None or "login" in prompt or _too_old(user, snap.values.get("max_age")):
        if "none" in prompt:
            return _redirect_error(server, redirect_uri, "login_required", state)
        return RedirectResponse(
            login_url(_without_prompt(snap), login_hint=snap.values.get("login_hint"), force=True),
            status_code=303,
        )
    level = required_level(snap.values.get("acr_values"))
    if level is not None and not satisfies(user.amr, level):
        return await _step_up(svc, snap, user, redirect_uri, state, prompt)

    client = grant.client.row
    scope: str = grant.request.scope or ""
    needs_consent = not client.is_first_party and (
        "consent" in prompt
        or not await anyio.to_thread.run_sync(
            consents.covers, user.record.id, client.client_id, scope
        )
    )
    if request.method == "GET":
        if needs_consent:
            if "none" in prompt:
                return _redirect_error(server, redirect_uri, "consent_required", state)
            return _consent_page(request, client.client_name, client.client_uri, scope)
        approved: AuthorizingUser | None = user
    else:
        check_csrf(request, snap.form.get("csrf_token", ""))
        approved = user if snap.form.get("decision") == "allow" else None
        if approved is not None:
            ip = client_ip(request)
            await anyio.to_thread.run_sync(
                lambda: consents.remember(user.record.id, client.client_id, scope, ip=ip)
            )
    response: Response = await anyio.to_thread.run_sync(
        server.create_authorization_response, snap, approved, grant
    )
    if response.status_code == 302:
        # A7: Authlib answers 302 to both GET and POST; never 307 (RFC 9700 §4.12).
        response.headers["Cache-Control"] = "no-store"
    return response


async def _step_up(
    svc: Services,
    snap: RequestSnapshot,
    user: AuthorizingUser,
    redirect_uri: str,
    state: str | None,
    prompt: set[str],
) -> Response:
    """M11: the session's login is weaker than `acr_values` asks. A user with a
    second factor signs in again, and every sign-in of such an account ends with
    the factor (M6), so the next pass sees an mfa login and this never loops."""
    summary = await anyio.to_thread.run_sync(svc.factors.summary, user.record.id)
    if not summary.enrolled:
        # OpenID Connect Core Unmet Authentication Requirements 1.0 §2: no login
        # this user can make would do; the client hears so rather than a loop.
        return _redirect_error(
            svc.oauth_server, redirect_uri, "unmet_authentication_requirements", state
        )
    if "none" in prompt:
        # OIDC Core §3.1.2.6: a login is needed and the client forbade any page.
        return _redirect_error(svc.oauth_server, redirect_uri, "interaction_required", state)
    # acr_values stays in the way back (unlike prompt=login and max_age): the
    # login that comes back is checked against it once more.
    return RedirectResponse(
        login_url(_without_prompt(snap), login_hint=snap.values.get("login_hint"), force=True),
        status_code=303,
    )


# Ten digits of seconds: over three centuries.
MAX_AGE_DIGITS = 10


def _too_old(user: AuthorizingUser, max_age: str | None) -> bool:
    # OIDC Core §3.1.2.1: max_age forces a login when the last one is older.
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if max_age is None or not (max_age.isascii() and max_age.isdigit()):
        return False
    if len(max_age) > MAX_AGE_DIGITS:
        # Longer than any login could be old (and int() refuses 4,300 digits):
        # never too old, never a 500.
        return False
    return time.time() - user.auth_time > int(max_age)


def _consent_page(
    request: Request, client_name: str, client_uri: str | None, scope: str
) -> Response:
    scopes = [(s, describe(s)) for s in scope.split()]
    context: dict[str, Any] = {
        "client_name": client_name,
        "client_uri": client_uri,
        "scopes": scopes,
        "action": request.url.path + "?" + request.url.query,
    }
    cookies = Response()
    context["csrf_token"] = issue_csrf(cookies, request)
    return render(request, "consent.html", context, response=cookies)
