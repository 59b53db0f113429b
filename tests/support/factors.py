"""Second factors in tests: an address arranged as proven (only such accounts may
enrol, M3), and the codes an authenticator app would show, computed with pyotp
from the key a page shows (M1)."""

from __future__ import annotations

import re
import time

import httpx
import pyotp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import PASSWORD
from tests.support.pages import csrf_token
from tests.support.wiring import engine_of
from userservice.db.models import User

START, CONFIRM = "/account/two-factor/start", "/account/two-factor/confirm"
# Recovery codes as the pages show them: four groups of four base32 letters.
CODE_SHAPE = re.compile(r"^[a-z2-7]{4}(-[a-z2-7]{4}){3}$")


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
