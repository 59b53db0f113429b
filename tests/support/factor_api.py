"""Second factors through the API in tests: an authenticator app set up with the
codes of tests/support/factors.py (pyotp, from the key the API returns, M1), what
was stored (audit events, queued mail), and a first-party token as a sign-in with
the second factor would give it (the grant that makes one is tested with the
token endpoint)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.accounts import bearer
from tests.support.factors import now_code
from tests.support.oauth_clients import jwt_claims
from tests.support.wiring import engine_of
from userservice.db.models import AuditEvent, OutboxMail
from userservice.services.access_tokens import Grant
from userservice.services.assurance import ONE_TIME_CODE, with_second_factor
from userservice.wiring import wired


def start(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post("/users/me/factors/totp", headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def enrol(client: TestClient, headers: dict[str, str]) -> tuple[str, list[str]]:
    """An app set up and confirmed: its key and the ten recovery codes."""
    secret = str(start(client, headers)["secret"])
    confirmed = client.post(
        "/users/me/factors/totp/confirm", json={"code": now_code(secret)}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, list(confirmed.json()["recovery_codes"])


def fresh_token(app: FastAPI, like: dict[str, str], *, age: int = 0) -> dict[str, str]:
    """A first-party access token for the user of `like` (a bearer header), its login
    `age` seconds ago, as the sign-in with a second factor issues them (amr pwd otp
    mfa, M5: what a step-up operation asks of an account with a factor, M12)."""
    claims = jwt_claims(like["Authorization"][7:])
    user = wired(app).accounts.get(uuid.UUID(claims["sub"]))
    grant = Grant(auth_time=int(time.time()) - age, amr=with_second_factor(ONE_TIME_CODE))
    token = wired(app).tokens.signer.for_user(
        user.id, user.tokens_valid_after, claims["client_id"], claims["scope"], grant
    )
    return bearer(token)


def events(app: FastAPI, prefix: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.event.like(f"{prefix}%")).order_by(AuditEvent.id)
    with engine_of(app).connect() as conn:
        return list(conn.execute(query).all())  # type: ignore[arg-type]


def mails(app: FastAPI, recipient: str) -> list[str]:
    """The kinds of mail queued for an address, oldest first."""
    query = select(OutboxMail.kind).where(OutboxMail.recipient == recipient)
    with engine_of(app).connect() as conn:
        return [str(kind) for kind in conn.execute(query.order_by(OutboxMail.id)).scalars()]
