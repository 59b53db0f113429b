"""One half-login ends in at most one session (M6), on SQLite and PostgreSQL: two
correct codes (the app's and a recovery code, or two recovery codes) sent at the
same moment for one half-login from one browser give one session; the other
request finds the half-login ended and goes back to the password. Also when
the half-login ends between checking the code and starting the session, and
for the forced enrolment's last step (M8)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from tests.support.accounts import make_admin, register
from tests.support.factors import now_code, secret_on, verified
from tests.support.pages import EMAIL, SESSION, csrf_token, web_login
from tests.support.wiring import engine_of
from userservice.db.models import BrowserSession, HalfLogin
from userservice.wiring import wired

PAGE = "/login/second-factor"
EXPIRED = "/login?expired=1"
ROUNDS = 4  # one app code and seven of the ten recovery codes


@pytest.fixture
def enrolled(client: TestClient, app: FastAPI) -> tuple[str, list[str]]:
    """Ada's app confirmed with the previous step's code, so the current one is
    still hers to use once (M1); (secret, recovery codes)."""
    user_id = uuid.UUID(register(client, EMAIL)["id"])
    verified(app, EMAIL)
    factors = wired(app).factors
    secret = factors.start_totp(user_id, ip=None).secret
    codes = factors.confirm_totp(user_id, now_code(secret, -1), ip=None, locale="en")
    return secret, codes


def sessions(app: FastAPI) -> int:
    with engine_of(app).connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(BrowserSession)) or 0)


def at_once(client: TestClient, path: str, forms: list[dict[str, str]]) -> list[httpx.Response]:
    """POST each form from its own thread, released together, with the one
    browser's cookies (the same half-login)."""
    gate = threading.Barrier(len(forms))
    answers: list[Any] = [None] * len(forms)

    def send(index: int) -> None:
        gate.wait()
        try:
            answers[index] = client.post(path, data=forms[index], follow_redirects=False)
        except Exception as exc:  # reported by the assertion below
            answers[index] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(isinstance(a, Exception) or a is None for a in answers), answers
    return answers


def test_m6_two_correct_codes_at_once_give_one_session(
    client: TestClient, app: FastAPI, enrolled: tuple[str, list[str]]
) -> None:
    secret, codes = enrolled
    pairs = [(now_code(secret), codes[0])]
    pairs += [(codes[2 * r - 1], codes[2 * r]) for r in range(1, ROUNDS)]
    for number, pair in enumerate(pairs, start=1):
        client.cookies.clear()
        assert web_login(client).headers["location"] == PAGE
        page = client.get(PAGE, follow_redirects=False)
        token = csrf_token(page.text)
        answers = at_once(client, PAGE, [{"code": c, "csrf_token": token} for c in pair])
        places = sorted(a.headers.get("location", str(a.status_code)) for a in answers)
        # One login, the other request back to the password; never two sessions.
        assert places == ["/account", EXPIRED], places
        assert sessions(app) == number


def test_m6_a_half_login_ended_after_the_code_check_starts_no_session(
    client: TestClient,
    app: FastAPI,
    enrolled: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other order, made certain: the code is right, and the half-login is
    gone before the session would start (its time ran out, or a parallel
    request ended it)."""
    secret, _codes = enrolled
    assert web_login(client).headers["location"] == PAGE
    factors = wired(app).factors
    checked: Callable[..., str] = factors.verify

    def verify_then_end(*args: Any, **kwargs: Any) -> str:
        method = checked(*args, **kwargs)
        with engine_of(app).begin() as conn:
            conn.execute(delete(HalfLogin))
        return method

    monkeypatch.setattr(factors, "verify", verify_then_end)
    page = client.get(PAGE, follow_redirects=False)
    response = client.post(
        PAGE,
        data={"code": now_code(secret), "csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == EXPIRED
    assert SESSION not in client.cookies and sessions(app) == 0


def test_m6_m8_an_enrolment_whose_half_login_ended_starts_no_session(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = "root@example.com"
    make_admin(app, root)
    verified(app, root)
    wired(app).mfa_policy.set_required_for("admins", actor_id=uuid.uuid4(), ip=None)
    assert web_login(client, root).headers["location"] == "/login/enrol"
    start = client.get("/login/enrol", follow_redirects=False)
    setup = client.post(
        "/login/enrol/start", data={"csrf_token": csrf_token(start.text)}, follow_redirects=False
    )
    factors = wired(app).factors
    confirmed: Callable[..., list[str]] = factors.confirm_totp

    def confirm_then_end(*args: Any, **kwargs: Any) -> list[str]:
        codes = confirmed(*args, **kwargs)
        with engine_of(app).begin() as conn:
            conn.execute(delete(HalfLogin))
        return codes

    monkeypatch.setattr(factors, "confirm_totp", confirm_then_end)
    response = client.post(
        "/login/enrol",
        data={"code": now_code(secret_on(setup.text)), "csrf_token": csrf_token(setup.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == EXPIRED
    assert SESSION not in client.cookies and sessions(app) == 0
