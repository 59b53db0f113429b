"""Second factors in tests: an address arranged as proven (only such accounts may
enrol, M3), the codes an authenticator app would show, computed with pyotp from
the key a page shows (M1), and an account's audit events."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.accounts import PASSWORD, register
from tests.support.pages import csrf_token
from tests.support.wiring import engine_of
from userservice.db.models import AuditEvent, User
from userservice.wiring import Services

START, CONFIRM = "/account/two-factor/start", "/account/two-factor/confirm"
# Recovery codes as the pages show them: four groups of four base32 letters.
CODE_SHAPE = re.compile(r"^[a-z2-7]{4}(-[a-z2-7]{4}){3}$")

ADA = "ada@example.com"


def verified(app: FastAPI, email: str) -> None:
    """Arrange an address as proven (the mailed link is tested elsewhere)."""
    with engine_of(app).begin() as conn:
        conn.execute(update(User).where(User.email == email).values(email_verified=True))


def secret_on(page: str) -> str:
    """The key of the setup page, as a person would type it (groups joined)."""
    found = re.search(r'<code id="totp-secret"[^>]*>([A-Z2-7 ]+)</code>', page)
    assert found, page
    return found.group(1).replace(" ", "")


def codes_on(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-7-]+)</code></li>", page)


def now_code(secret: str, ahead: int = 0) -> str:
    """The app's code now, or `ahead` steps of 30 s later (a step the server has
    not seen used, within its ±1 tolerance)."""
    return str(pyotp.TOTP(secret).at(time.time() + 30 * ahead))


def wrong_code(secret: str) -> str:
    """Six digits that are none of the codes the server accepts right now."""
    valid = {now_code(secret, step) for step in (-1, 0, 1)}
    guess = 123456
    while f"{guess:06d}" in valid:
        guess += 1
    return f"{guess:06d}"


def post(client: TestClient, path: str, **fields: str) -> httpx.Response:
    token = csrf_token(client.get("/account").text)
    response: httpx.Response = client.post(
        path, data={"csrf_token": token, **fields}, follow_redirects=False
    )
    return response


def enable(client: TestClient) -> tuple[str, list[str], str]:
    """Set the app up; (secret, recovery codes, the confirming code)."""
    started = post(client, START, current_password=PASSWORD)
    assert started.status_code == 200, started.text
    secret = secret_on(started.text)
    code = now_code(secret)
    confirmed = post(client, CONFIRM, code=code)
    assert confirmed.status_code == 200, confirmed.text
    return secret, codes_on(confirmed.text), code


def verified_user(client: TestClient, services: Services, email: str = ADA) -> uuid.UUID:
    """A registered account whose address is proven (through the services)."""
    user_id = uuid.UUID(register(client, email)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(email_verified=True))
    return user_id


def events(services: Services, user_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """(event, details) of each audit event of the account, in order."""
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.event, AuditEvent.details)
            .where(AuditEvent.user_id == user_id)
            .order_by(AuditEvent.id)
        ).all()
    return [(row[0], json.loads(row[1] or "{}")) for row in rows]
