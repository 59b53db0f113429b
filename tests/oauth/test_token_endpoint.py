"""The one token endpoint: every grant goes through one dispatcher, so the rules
written once there hold for each grant alike: when a refresh token is issued,
which scopes a user's token may hold (C2), cleartext refused, and no worker-thread
hop except the code exchange's one unit of work. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import login, make_admin
from tests.support.oauth_clients import (
    SECRET,
    add_client,
    add_service_client,
    assert_oauth_error,
    basic_auth,
    password_form,
    public_first_party,
)
from tests.support.oauth_flow import add_app, obtain_code, redeem, sign_in, signed_in

CODE_GRANT = ("authorization_code", "refresh_token")


@pytest.mark.parametrize(
    ("first_party", "grant_types", "scope", "gets_refresh"),
    [
        (False, CODE_GRANT, "openid offline_access", True),
        (False, CODE_GRANT, "openid profile", False),  # a third party needs offline_access
        (True, CODE_GRANT, "openid", True),  # a first-party app does not
        (False, ("authorization_code",), "openid offline_access", False),
        (True, ("authorization_code",), "openid", False),
    ],
)
def test_code_grant_gets_a_refresh_token_by_the_one_rule(
    client: TestClient,
    first_party: bool,
    grant_types: Sequence[str],
    scope: str,
    gets_refresh: bool,
) -> None:
    add_app(client, first_party=first_party, grant_types=grant_types)
    signed_in(client)
    code, verifier = obtain_code(client, scope=scope)
    response = redeem(client, code, verifier)
    assert response.status_code == 200, response.text
    assert ("refresh_token" in response.json()) is gets_refresh


@pytest.mark.parametrize(
    ("grant_types", "gets_refresh"),
    [(("password", "refresh_token"), True), (("password",), False)],
)
def test_password_grant_gets_a_refresh_token_by_the_one_rule(
    app: FastAPI,
    client: TestClient,
    user: dict[str, Any],
    grant_types: Sequence[str],
    gets_refresh: bool,
) -> None:
    public_first_party(app, "frontend-two", grant_types=grant_types)
    # Without offline_access: a first-party client needs no such consent.
    tokens = login(client, user["email"], client_id="frontend-two", scope="openid profile")
    assert ("refresh_token" in tokens) is gets_refresh


def test_client_credentials_never_gets_a_refresh_token(app: FastAPI, client: TestClient) -> None:
    """RFC 6749 §4.4.3, even for a client registered for refresh_token."""
    add_client(
        app,
        "reporting",
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("client_credentials", "refresh_token"),
        scope="openid offline_access users:read",
        first_party=True,
    )
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth("reporting", SECRET),
    )
    assert response.status_code == 200, response.text
    assert "refresh_token" not in response.json()


def test_c2_code_grant_gives_privileged_scopes_to_admins_only(
    app: FastAPI, client: TestClient
) -> None:
    """The scope policy of the password grant holds for the code grant too: a
    non-admin's token never carries a privileged scope, whatever the app asked."""
    add_app(client, scope="openid users:read")
    signed_in(client)
    code, verifier = obtain_code(client, scope="openid users:read")
    response = redeem(client, code, verifier)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid"

    client.cookies.clear()
    make_admin(app, "root@example.com")
    sign_in(client, email="root@example.com")
    code, verifier = obtain_code(client, scope="openid users:read")
    assert redeem(client, code, verifier).json()["scope"] == "openid users:read"


@pytest.mark.parametrize(
    "grant", ["password", "refresh_token", "authorization_code", "client_credentials"]
)
def test_c14_every_grant_refuses_cleartext_http(client: TestClient, grant: str) -> None:
    """C14: client secrets, passwords, codes and tokens never cross plain HTTP to
    a host that is not loopback; the answer is the same for every grant."""
    response = client.post(
        "http://testserver/oauth/token",
        data={"grant_type": grant, "client_id": "x"},
        headers=basic_auth("reporting", SECRET) if grant == "client_credentials" else {},
    )
    assert_oauth_error(response, 400, "insecure_transport")


def test_loopback_http_is_allowed(client: TestClient, user: dict[str, Any]) -> None:
    """RFC 8252 §8.3: a native app on the same machine may talk plain HTTP to it."""
    response = client.post("http://127.0.0.1/oauth/token", data=password_form())
    assert response.status_code == 200, response.text


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every anyio worker-thread hop from now on (FastAPI's threadpool goes
    through it too), by the name of the function sent to the thread."""
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return hops


def test_password_refresh_and_client_credentials_stay_on_the_event_loop(
    app: FastAPI, client: TestClient, user: dict[str, Any], thread_hops: list[str]
) -> None:
    add_service_client(app, scope="users:read")
    thread_hops.clear()
    tokens = login(client, user["email"])
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    service = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth("reporting", SECRET),
    )
    assert service.status_code == 200, service.text
    assert thread_hops == []


def test_the_code_exchange_takes_one_thread_hop(client: TestClient, thread_hops: list[str]) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    code, verifier = obtain_code(client)
    thread_hops.clear()
    response = redeem(client, code, verifier)
    assert response.status_code == 200, response.text
    assert len(thread_hops) == 1, thread_hops
