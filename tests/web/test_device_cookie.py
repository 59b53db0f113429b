"""S12: the owner cannot be locked out of the sign-in page. A browser that signed
in before holds a device cookie; with it, its attempts count in its own window,
so an attacker's guesses (without one) cannot lock it out, and a cookie that is
forged, expired, garbage or another account's buys nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.pages import EMAIL, SESSION, attributes, set_cookies, web_login
from userservice.app import create_app
from userservice.security.device_cookie import DeviceClaim, make_device_cookie, new_nonce
from userservice.settings import Settings
from userservice.web.browser import DEVICE_COOKIE
from userservice.wiring import wired

LIMIT = 3
WRONG = "not the password at all"


@pytest.fixture
def strict_app(make_settings: Callable[..., Settings]) -> Iterator[FastAPI]:
    app = create_app(make_settings(login_limit_per_account=f"{LIMIT}/minute"))
    with TestClient(app, base_url="https://testserver") as setup:
        register(setup, EMAIL)
        register(setup, "bob@example.com")
        yield app


def _browser(app: FastAPI, device: str | None = None) -> TestClient:
    client = TestClient(app, base_url="https://testserver")
    if device is not None:
        client.cookies.set(DEVICE_COOKIE, device)
    return client


def _device_of(app: FastAPI, email: str = EMAIL) -> str:
    """Sign in once from a fresh browser; the device cookie it was given."""
    with _browser(app) as owner:
        response = web_login(owner, email)
        assert response.status_code == 303, response.text
        header = set_cookies(response)[DEVICE_COOKIE]
        flags = attributes(header)
        assert {"secure", "httponly", "path", "samesite", "max-age"} <= set(flags), header
        assert flags["path"] == "/" and flags["samesite"].lower() == "lax"
        assert int(flags["max-age"]) >= 300 * 86400
        value = owner.cookies.get(DEVICE_COOKIE)
        assert value and email not in value
        return value


def _hammer(app: FastAPI) -> None:
    """An attacker without a device cookie, past the limit."""
    with _browser(app) as attacker:
        for _ in range(LIMIT):
            assert web_login(attacker, password=WRONG).status_code == 200
        assert web_login(attacker, password=WRONG).status_code == 429
        assert web_login(attacker).status_code == 429  # even with the right password


def test_the_owners_browser_gets_in_while_an_attacker_is_throttled(strict_app: FastAPI) -> None:
    device = _device_of(strict_app)
    _hammer(strict_app)
    with _browser(strict_app, device) as owner:
        response = web_login(owner)
        assert response.status_code == 303, response.text
        assert SESSION in set_cookies(response)
        # The same device is kept (its window stays its own), with a fresh expiry.
        renewed = set_cookies(response)[DEVICE_COOKIE].split(";")[0].split("=", 1)[1]
        assert renewed.split(".")[2] == device.split(".")[2]


def test_a_device_locks_only_itself(strict_app: FastAPI) -> None:
    device, other_device = _device_of(strict_app), _device_of(strict_app)
    with _browser(strict_app, device) as careless:
        for _ in range(LIMIT):
            assert web_login(careless, password=WRONG).status_code == 200
        assert web_login(careless).status_code == 429
    with _browser(strict_app, other_device) as owner:
        assert web_login(owner).status_code == 303
    with _browser(strict_app) as fresh:
        assert web_login(fresh).status_code == 303


def _forged(app: FastAPI, device: str) -> dict[str, str]:
    version, user, nonce, expires, mac = device.split(".")
    bob_device = _device_of(app, "bob@example.com")
    ours = wired(app).accounts.devices
    expired = make_device_cookie(
        ours._key, DeviceClaim(uuid.UUID(hex=user), new_nonce(), 1_000_000_000)
    )
    return {
        "another account's": bob_device,
        "re-addressed": ".".join((version, uuid.uuid4().hex, nonce, expires, mac)),
        "unsigned": ".".join((version, user, nonce, expires, "A" * 43)),
        "expired": expired,
        "garbage": 'v1.%00.\\.."' * 40,
        "huge": "v1." + "a" * 4000,
    }


@pytest.mark.parametrize(
    "kind", ["another account's", "re-addressed", "unsigned", "expired", "garbage", "huge"]
)
def test_a_cookie_that_proves_nothing_gives_no_bypass(strict_app: FastAPI, kind: str) -> None:
    forged = _forged(strict_app, _device_of(strict_app))[kind]
    _hammer(strict_app)
    with _browser(strict_app, forged) as impostor:
        response = web_login(impostor)
        assert response.status_code == 429, kind


def test_guesses_sent_at_once_from_one_device_do_not_outrun_its_window(
    strict_app: FastAPI,
) -> None:
    """The in-flight places hold for a device's window too: twelve wrong guesses at
    once get the limit's worth of answers and 9 x 429."""
    device = _device_of(strict_app)
    with _browser(strict_app, device) as owner:
        owner.get("/login")  # one CSRF cookie for all twelve
        start = threading.Barrier(12)

        def guess(_: int) -> int:
            start.wait(timeout=30)
            return web_login(owner, password=WRONG).status_code

        with ThreadPoolExecutor(12) as pool:
            statuses = sorted(pool.map(guess, range(12)))
    assert statuses == [200] * LIMIT + [429] * (12 - LIMIT)
