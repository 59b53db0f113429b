"""Accounts with a confirmed authenticator app for the OAuth tests, made through
the second-factor service itself, with codes computed by pyotp."""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.factors import now_code, verified
from userservice.services.assurance import with_second_factor
from userservice.web.browser import SESSION_COOKIE
from userservice.wiring import wired

IP = "192.0.2.44"


def with_app(client: TestClient, email: str) -> tuple[uuid.UUID, str]:
    """Register `email`, prove it, and confirm an authenticator app with the
    previous step's code (the current one stays usable); (user id, secret)."""
    app = client.app
    assert isinstance(app, FastAPI)
    user_id = uuid.UUID(register(client, email)["id"])
    verified(app, email)
    factors = wired(app).factors
    secret = factors.start_totp(user_id, ip=IP).secret
    factors.confirm_totp(user_id, now_code(secret, -1), ip=IP, locale="en")
    return user_id, secret


def second_factor_session(client: TestClient, user_id: uuid.UUID, secret: str) -> None:
    """Give the TestClient the session a login with password and app code ends in:
    the code checked by the service's second step, the session started with the
    amr it names."""
    app = client.app
    assert isinstance(app, FastAPI)
    svc = wired(app)
    method = svc.factors.verify(user_id, now_code(secret), ip=IP, locale="en")
    raw = svc.sessions.start(user_id, int(time.time()), amr=with_second_factor(method))
    client.cookies.set(SESSION_COOKIE, raw, domain="testserver.local", path="/")
