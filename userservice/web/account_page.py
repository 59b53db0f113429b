"""Rendering the account page: its sections from the services, the notice after an
action, and the form errors of a refused one. The routes are in web/account.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import Response

from userservice.i18n import N_
from userservice.services.consents import GrantView
from userservice.services.factors import FactorSummary
from userservice.services.scopes import describe
from userservice.services.sessions import ActiveSession, BrowserSession
from userservice.web.browser import SESSION_COOKIE, issue_csrf
from userservice.web.passkey_views import confirmation_options, factor_kind, passkey_section
from userservice.web.templating import render
from userservice.wiring import Services

# After an action the page says what happened, by a fixed key in ?done=; the query
# never carries text of its own onto the page (F7).
NOTICES = {
    "profile": N_("Your name was saved."),
    "email-sent": N_(
        "Check your mail at the new address: the change takes effect once you open "
        "the link we sent there."
    ),
    "password": N_("Your password was changed. Every other device was signed out."),
    "session-ended": N_("That session was signed out."),
    "app-withdrawn": N_("The app's access was withdrawn."),
    "two-factor-off": N_(
        "Two-step verification is off. Every other device was signed out; sign-ins "
        "now need your password alone."
    ),
}
NO_PASSWORD = N_("Enter your current password.")
WRONG_PASSWORD = N_("The current password is not correct.")
NO_NEW_PASSWORD = N_("Enter a new password.")
NOT_CONFIRMED = N_("Tick the box to confirm that the account is to be deleted.")
TOO_MANY = N_("Too many attempts. Wait a little and try again.")
NO_CODE = N_("Enter the code from your authenticator app, or a recovery code.")
# M7 for an account with passkeys and no app: its code is a recovery code.
NO_RECOVERY_CODE = N_("Enter a recovery code, or confirm the change with your passkey.")
BAD_CODE = N_("That code is not correct, or it was already used.")
# M2: so few codes left that losing the phone or the passkey could lock the owner
# out soon.
FEW_CODES_LEFT = 3
RECOVERY_CODES = 10


@dataclass
class Refusal:
    """A form the page sends back: its errors by field, what was typed (never a
    password), and the status of the answer."""

    errors: dict[str, str]
    typed: dict[str, str] = field(default_factory=dict)
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)


def when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _session_rows(found: list[ActiveSession]) -> list[dict[str, Any]]:
    return [
        {
            "handle": s.handle,
            "browser": s.device.browser,
            "system": s.device.system,
            "ip": s.ip or "",
            "last_seen": when(s.last_seen_at),
            "started": when(s.created_at),
            "current": s.current,
        }
        for s in found
    ]


def _factor_context(user_verified: bool, summary: FactorSummary) -> dict[str, Any]:
    confirmed = summary.totp_confirmed_at
    return {
        "totp_on": summary.totp,
        "totp_since": when(confirmed) if confirmed is not None else "",
        "codes_left": summary.recovery_codes_left,
        "codes_total": RECOVERY_CODES,
        # M2: the codes stand in for any factor (the app or a passkey), so the
        # warning and the new set are offered whichever the account has.
        "has_factor": summary.enrolled,
        "factor_kind": factor_kind(summary),
        "codes_low": summary.enrolled and summary.recovery_codes_left <= FEW_CODES_LEFT,
        # M3: only an address the user proved to own may enrol.
        "may_enrol": user_verified,
    }


def _grant_rows(grants: list[GrantView]) -> list[dict[str, Any]]:
    return [
        {
            "client_id": g.client_id,
            "client_name": g.client_name,
            "granted": when(g.granted_at),
            "scopes": [(scope, describe(scope)) for scope in g.scope.split()],
        }
        for g in grants
    ]


async def account_page(
    request: Request,
    svc: Services,
    session: BrowserSession,
    *,
    refusal: Refusal | None = None,
) -> Response:
    user = session.user
    current = request.cookies.get(SESSION_COOKIE)
    sessions = await anyio.to_thread.run_sync(svc.sessions.active, user.id, current)
    grants = await anyio.to_thread.run_sync(svc.consents.list, user.id)
    factors = await anyio.to_thread.run_sync(svc.factors.summary, user.id)
    notice = None if refusal else NOTICES.get(request.query_params.get("done", ""))
    errors = dict(refusal.errors) if refusal else {}
    if errors.get("email_code") == NO_CODE and not factors.totp:
        errors["email_code"] = NO_RECOVERY_CODE
    typed = refusal.typed if refusal else {}
    context: dict[str, Any] = {
        "email": user.email,
        "display_name": typed.get("display_name", user.display_name or ""),
        "new_email": typed.get("email", ""),
        "signed_in_at": when(dt.datetime.fromtimestamp(session.auth_time, dt.UTC)),
        "sessions": _session_rows(sessions),
        "grants": _grant_rows(grants),
        "notice": notice,
        "errors": errors,
        # M7: an address change asks for the second factor too.
        "email_needs_code": factors.enrolled,
        # M7, M9: or one of the account's passkeys, bound to this session.
        "email_passkey_options": await confirmation_options(
            svc, user.id, factors.passkeys, current
        ),
        **_factor_context(user.email_verified, factors),
        **await passkey_section(request, svc, user.id),
    }
    cookies = Response()
    context["csrf_token"] = issue_csrf(cookies, request)
    return render(
        request,
        "account.html",
        context,
        status_code=refusal.status if refusal else 200,
        response=cookies,
        headers=refusal.headers if refusal else None,
    )
