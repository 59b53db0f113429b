"""What the pages show of passkeys (M9): the WebAuthn options a page carries for
the local script, the account page's list, and the checks every passkey form
shares. The routes are in web/passkeys_login.py and web/account_passkeys.py."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import anyio
from fastapi import Request

from userservice.errors import EmailNotVerified, PasskeysUnavailable
from userservice.i18n import N_
from userservice.services.factors import FactorSummary
from userservice.services.passkeys import PasskeyView
from userservice.wiring import Services

# A WebAuthn answer is a few kilobytes (WebAuthn L2 §5.2: attestation "none" holds
# no certificate chain); anything longer is refused before parsing.
MAX_RESPONSE_LENGTH = 16 * 1024
MAX_PASSKEY_NAME = 64
# The account page says what happened by a fixed key of ?done= (F7).
PASSKEY_NOTICES = {
    "passkey-added": N_("Your passkey was added. Every other device was signed out."),
    "passkey-renamed": N_("The passkey was renamed."),
    "passkey-removed": N_("The passkey was removed. Every other device was signed out."),
}


def factor_kind(summary: FactorSummary) -> str:
    """Which second factors the account has, as the pages word them (M2, M9):
    "app", "passkey", "both", or "none"."""
    if summary.totp:
        return "both" if summary.passkeys else "app"
    return "passkey" if summary.passkeys else "none"


def page_options(options_json: str) -> Any:
    """The service's options as a value for the template's `tojson`, which escapes
    <, > and & (F7): an email in user.name cannot close the script element."""
    return json.loads(options_json)


def sign_in_options(svc: Services) -> Any | None:
    """The passwordless options for the sign-in page, or None when passkeys are off.
    Stateless (the challenge is spent only by an answer), so rendering the page
    writes nothing and stays on the event loop."""
    if not svc.passkeys.available:
        return None
    try:
        return page_options(svc.passkeys.sign_in_options())
    except PasskeysUnavailable:
        return None


async def second_step_options(svc: Services, user_id: uuid.UUID, half_login: str) -> Any | None:
    """The second step's options (M6, M9) when the account has a passkey, bound to
    this half-login; None otherwise."""
    if not svc.passkeys.available:
        return None
    keys = await anyio.to_thread.run_sync(svc.passkeys.list, user_id)
    if not keys:
        return None
    try:
        text = await anyio.to_thread.run_sync(
            svc.passkeys.second_factor_options, user_id, half_login
        )
    except PasskeysUnavailable:
        return None
    return page_options(text)


async def enrol_options(svc: Services, user_id: uuid.UUID, half_login: str) -> Any | None:
    """A forced enrolment's creation options (M8, M13), bound to this half-login;
    None where passkeys are off or the address is unproven (M3)."""
    if not svc.passkeys.available:
        return None
    try:
        text = await anyio.to_thread.run_sync(
            lambda: svc.passkeys.registration_options(user_id, half_login_id=half_login)
        )
    except (PasskeysUnavailable, EmailNotVerified):
        return None
    return page_options(text)


async def confirmation_options(
    svc: Services, user_id: uuid.UUID, passkeys: int, session_id: str | None
) -> Any | None:
    """The options of a signed-in page that asks for the second factor again (M7:
    the address change) when the account has a passkey, bound to this browser's
    session; None otherwise. Stateless, as every challenge (nothing is written)."""
    if not passkeys or not session_id or not svc.passkeys.available:
        return None
    try:
        text = await anyio.to_thread.run_sync(
            svc.passkeys.confirmation_options, user_id, session_id
        )
    except PasskeysUnavailable:
        return None
    return page_options(text)


def answer_of(form: dict[str, str]) -> str | None:
    """The form's WebAuthn answer when it can be one (a JSON object of bounded
    length); None for an empty, oversized or unreadable field, which never
    reaches the verifier."""
    text = form.get("response", "")
    if not text or len(text) > MAX_RESPONSE_LENGTH:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        # A few kilobytes of "[[[[" nest deeper than the parser recurses: an
        # unreadable answer like any other, never a 500.
        return None
    return text if isinstance(parsed, dict) else None


def passkey_name(form: dict[str, str]) -> str | None:
    """A name the list can show: 1 to 64 characters, no control characters."""
    name = form.get("name", "").strip()
    if not 0 < len(name) <= MAX_PASSKEY_NAME:
        return None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return None
    return name


def when(moment: dt.datetime) -> str:
    # As the account page's other dates (account_page imports this module).
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _row(key: PasskeyView) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "name": key.name,
        "added": when(key.created_at),
        "last_used": when(key.last_used_at) if key.last_used_at else None,
        "synced": key.synced,
    }


async def passkey_section(request: Request, svc: Services, user_id: uuid.UUID) -> dict[str, Any]:
    """The account page's "Passkeys" section."""
    if not svc.passkeys.available:
        return {"passkeys_available": False, "passkeys": [], "passkey_notice": None}
    keys = await anyio.to_thread.run_sync(svc.passkeys.list, user_id)
    return {
        "passkeys_available": True,
        "passkeys": [_row(key) for key in keys],
        "passkey_notice": PASSKEY_NOTICES.get(request.query_params.get("done", "")),
    }
