"""Passkeys in a real headless Chromium (M9, M10): a TLS server whose public URL
is https://localhost:<port> (WebAuthn wants a relying party id that is a domain),
the DevTools virtual authenticator in place of a phone or security key, and the
amr the server stored for the browser's session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import register
from tests.support.browser import tls_server
from tests.support.factors import verified
from tests.support.pages import SESSION
from tests.support.server import free_port
from userservice.app import create_app
from userservice.db.models import BrowserSession
from userservice.security.secrets import digest
from userservice.services.assurance import loaded_amr
from userservice.settings import Settings
from userservice.wiring import wired

ADA = "ada@example.com"
# A platform authenticator (CTAP2, internal) with user verification.
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@contextmanager
def served_with_ada(
    database_url: str, directory: Path, *, required_for: str | None = None
) -> Iterator[tuple[str, str, FastAPI]]:
    """(public URL https://localhost:<port>, pin, an app on the same database):
    Ada registered and proven, the sign-in rule `required_for` set (if any) before
    the server starts. The server is its own app on the same database; `app`
    reads what it stored."""
    port = free_port()
    issuer = f"https://localhost:{port}"
    settings = Settings(
        _env_file=None, database_url=database_url, data_dir=directory, issuer=issuer
    )
    app = create_app(settings)
    with TestClient(app, base_url=issuer) as client:
        register(client, ADA, display_name="Ada")
        verified(app, ADA)
        if required_for is not None:
            wired(app).mfa_policy.set_required_for(required_for, actor_id=uuid.uuid4(), ip=None)
        with tls_server(settings, directory, port=port) as (_base, pin):
            yield issuer, pin, app


def session_amr(app: FastAPI, context: Any) -> tuple[str, ...]:
    """The amr stored for the browser context's session cookie."""
    raw = {c["name"]: c["value"] for c in context.cookies()}[SESSION]
    with wired(app).accounts.db.unit_of_work(read_only=True) as session:
        query = select(BrowserSession.amr).where(BrowserSession.id_digest == digest(raw))
        return loaded_amr(session.execute(query).scalar_one())


def virtual_authenticator(context: Any, page: Any, transport: str = "internal") -> tuple[Any, str]:
    """A virtual authenticator attached to the page: (its DevTools session, its id)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {**VIRTUAL_AUTHENTICATOR, "transport": transport}
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])
