"""S12: the password grant and HTTP Basic carry no device cookie, so their failures
count per (account, source network): an attacker on one network exhausts only
that network's budget for the account, and the owner elsewhere still gets in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, register
from tests.support.oauth_clients import EMAIL, password_form, user_basic
from userservice.app import create_app
from userservice.settings import Settings

LIMIT = 3
ClientAt = Callable[[str], TestClient]


@pytest.fixture
def client_at(make_settings: Callable[..., Settings]) -> Iterator[ClientAt]:
    """TestClients of one app, each connecting from the address it is given."""
    app: FastAPI = create_app(make_settings(login_limit_per_account=f"{LIMIT}/minute"))
    with ExitStack() as stack:

        def at(address: str) -> TestClient:
            client = TestClient(app, base_url="https://testserver", client=(address, 50000))
            return stack.enter_context(client)

        register(at("203.0.113.1"), EMAIL)
        yield at


def _exhaust(client: TestClient) -> None:
    for _ in range(LIMIT):
        assert client.post("/oauth/token", data=password_form(password="bad")).status_code == 400
    assert client.post("/oauth/token", data=password_form()).status_code == 429


@pytest.mark.parametrize(
    ("attacker", "neighbour", "owner"),
    [
        ("10.0.0.5", "10.0.0.77", "192.168.1.7"),
        ("2001:db8:0:1::5", "2001:db8:0:1:ffff::9", "2001:db8:0:2::7"),
        ("::ffff:10.0.0.5", "10.0.0.6", "10.0.1.5"),
    ],
)
def test_an_attacker_exhausts_only_their_own_networks_budget(
    client_at: ClientAt, attacker: str, neighbour: str, owner: str
) -> None:
    _exhaust(client_at(attacker))
    # Another address of the same /24 or /64 shares that budget...
    same_network = client_at(neighbour)
    assert same_network.post("/oauth/token", data=password_form()).status_code == 429
    assert same_network.get("/users/me", headers=user_basic(EMAIL, PASSWORD)).status_code == 429
    # ...while the owner on another network signs in, by either route.
    home = client_at(owner)
    assert home.post("/oauth/token", data=password_form()).status_code == 200
    assert home.get("/users/me", headers=user_basic(EMAIL, PASSWORD)).status_code == 200


def test_basic_and_the_password_grant_share_a_networks_budget(client_at: ClientAt) -> None:
    client = client_at("10.0.0.5")
    for _ in range(LIMIT - 1):
        assert client.get("/users/me", headers=user_basic(EMAIL, "bad")).status_code == 401
    assert client.post("/oauth/token", data=password_form(password="bad")).status_code == 400
    assert client.get("/users/me", headers=user_basic(EMAIL, PASSWORD)).status_code == 429
    assert client_at("10.9.9.9").post("/oauth/token", data=password_form()).status_code == 200


def test_a_device_cookie_counts_for_nothing_without_a_browser_form(client_at: ClientAt) -> None:
    # The token endpoint reads no cookies: a device cookie sent along buys no
    # window of its own there (only the sign-in page issues and honours them).
    attacker = client_at("10.0.0.5")
    _exhaust(attacker)
    attacker.cookies.set(
        "__Host-device", "v1." + "0" * 32 + "." + "A" * 22 + ".9999999999." + "A" * 43
    )
    assert attacker.post("/oauth/token", data=password_form()).status_code == 429
