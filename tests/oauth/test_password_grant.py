"""POST /oauth/token with grant_type=password: responses, client rules, scopes,
indistinguishable failures and login throttling (C1-C3, C11, C13, E3, E4)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, make_admin, register
from tests.support.oauth_clients import (
    EMAIL,
    SECRET,
    add_client,
    assert_oauth_error,
    basic_auth,
    confidential_first_party,
    confidential_third_party,
    jwt_claims,
    password_form,
    public_first_party,
    user_basic,
)
from userservice.app import create_app
from userservice.settings import Settings

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_with(make_settings: Callable[..., Settings]) -> Iterator[ClientFactory]:
    """TestClients on apps built with overridden settings (throttle limits)."""
    with ExitStack() as stack:

        def build(**overrides: Any) -> TestClient:
            app = create_app(make_settings(**overrides))
            return stack.enter_context(TestClient(app, base_url="https://testserver"))

        yield build


def test_password_grant_returns_bearer_token_pair_with_no_store(client: TestClient) -> None:
    """C11: a token response has every RFC 6749 §5.1 field and `Cache-Control: no-store`."""
    register(client, EMAIL)
    response = client.post("/oauth/token", data=password_form())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert set(body["scope"].split()) == {
        "openid",
        "profile",
        "profile:write",
        "email",
        "offline_access",
    }
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 22  # >= 128 bits, base64url
    assert client.get("/users/me", headers=bearer(body["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password entirely"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_bad_credentials_are_invalid_grant(client: TestClient, email: str, password: str) -> None:
    """C11: a failed login is 400 invalid_grant with exactly {error, error_description}."""
    register(client, EMAIL)
    response = client.post("/oauth/token", data=password_form(email, password))
    assert_oauth_error(response, 400, "invalid_grant")


def test_third_party_client_may_not_use_password_grant(app: FastAPI, client: TestClient) -> None:
    """C1/C2: even if registered for it, a non-first-party client gets unauthorized_client."""
    register(client, EMAIL)
    confidential_third_party(app, "third-party-app")
    response = client.post(
        "/oauth/token", data=password_form(), headers=basic_auth("third-party-app", SECRET)
    )
    assert_oauth_error(response, 400, "unauthorized_client")


def test_grant_type_not_registered_for_client_is_unauthorized_client(
    app: FastAPI, client: TestClient
) -> None:
    """C1: a first-party client registered only for refresh_token cannot use password."""
    register(client, EMAIL)
    public_first_party(app, "refresh-only", grant_types=("refresh_token",))
    response = client.post("/oauth/token", data=password_form(client_id="refresh-only"))
    assert_oauth_error(response, 400, "unauthorized_client")


@pytest.mark.parametrize("grant", ["urn:example:bogus", "implicit", "PASSWORD"])
def test_unknown_grant_type_is_unsupported(client: TestClient, grant: str) -> None:
    """C11: RFC 6749 §5.2 unsupported_grant_type."""
    response = client.post("/oauth/token", data={"grant_type": grant})
    assert_oauth_error(response, 400, "unsupported_grant_type")


BAD_BODIES = {
    "no-grant": "username=ada%40example.com&password=x",
    "no-username": "grant_type=password&password=x",
    "no-password": "grant_type=password&username=ada%40example.com",
    "dup-grant": "grant_type=password&grant_type=password&username=ada%40example.com&password=x",
    "dup-password": "grant_type=password&username=ada%40example.com&password=a&password=b",
    "dup-scope": "grant_type=password&username=a%40b.c&password=x&scope=openid&scope=admin",
    "empty": "",
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_missing_or_duplicated_parameters_are_invalid_request(
    client: TestClient, kind: str
) -> None:
    """G4/C11: RFC 6749 §3.2 - a repeated or missing parameter is invalid_request."""
    register(client, EMAIL)
    response = client.post(
        "/oauth/token",
        content=BAD_BODIES[kind],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", ""]
)
def test_wrong_content_type_is_invalid_request(client: TestClient, content_type: str) -> None:
    """C11: the token endpoint takes only application/x-www-form-urlencoded."""
    register(client, EMAIL)
    response = client.post(
        "/oauth/token",
        content=b'{"grant_type": "password"}',
        headers={"Content-Type": content_type},
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_confidential_client_with_right_secret_gets_tokens(
    app: FastAPI, client: TestClient
) -> None:
    """C3 control: the registered method with the right secret succeeds."""
    register(client, EMAIL)
    confidential_first_party(app, "basic-app", "client_secret_basic")
    confidential_first_party(app, "post-app", "client_secret_post")
    by_basic = client.post(
        "/oauth/token", data=password_form(), headers=basic_auth("basic-app", SECRET)
    )
    assert by_basic.status_code == 200, by_basic.text
    by_post = client.post(
        "/oauth/token", data=password_form(client_id="post-app", client_secret=SECRET)
    )
    assert by_post.status_code == 200, by_post.text


BAD_CLIENT_AUTH: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "basic-missing": ({"client_id": "basic-app"}, {}),
    "basic-wrong": ({}, basic_auth("basic-app", "wrong-secret")),
    "basic-longer": ({}, basic_auth("basic-app", SECRET + "x")),
    "post-missing": ({"client_id": "post-app"}, {}),
    "post-wrong": ({"client_id": "post-app", "client_secret": "wrong"}, {}),
    "basic-client-uses-post": ({"client_id": "basic-app", "client_secret": SECRET}, {}),
    "post-client-uses-basic": ({}, basic_auth("post-app", SECRET)),
    "unknown-client": ({}, basic_auth("no-such-app", SECRET)),
}


@pytest.mark.parametrize("kind", sorted(BAD_CLIENT_AUTH))
def test_bad_client_authentication_is_401_invalid_client(
    app: FastAPI, client: TestClient, kind: str
) -> None:
    """C3: missing/wrong secret or a method other than the registered one -> 401
    invalid_client with a WWW-Authenticate challenge."""
    register(client, EMAIL)
    confidential_first_party(app, "basic-app", "client_secret_basic")
    confidential_first_party(app, "post-app", "client_secret_post")
    form, headers = BAD_CLIENT_AUTH[kind]
    response = client.post("/oauth/token", data=password_form(**form), headers=headers)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize("scope", ["openid email", "superuser", "openid profile email admin"])
def test_scope_beyond_client_registration_is_invalid_scope(
    app: FastAPI, client: TestClient, scope: str
) -> None:
    """C2/C13: scopes beyond the client's allowed set -> invalid_scope."""
    register(client, EMAIL)
    public_first_party(app, "narrow-app", scope="openid profile")
    response = client.post("/oauth/token", data=password_form(client_id="narrow-app", scope=scope))
    assert_oauth_error(response, 400, "invalid_scope")


def test_non_admin_asking_for_admin_scope_does_not_get_it(app: FastAPI, client: TestClient) -> None:
    """C2: no escalation - privileged scopes are dropped for non-admins, kept for admins."""
    register(client, EMAIL)
    make_admin(app, "root@example.com")
    tokens = login(client, EMAIL, scope="openid admin users:read")
    assert tokens["scope"] == "openid"
    assert client.get("/users", headers=bearer(tokens["access_token"])).status_code == 403
    admin_tokens = login(client, "root@example.com", scope="openid admin")
    assert set(admin_tokens["scope"].split()) == {"openid", "admin"}
    assert client.get("/users", headers=bearer(admin_tokens["access_token"])).status_code == 200


def test_unknown_user_and_wrong_password_look_identical(client: TestClient) -> None:
    """E3: same status, body and header names for an unknown user and a wrong password."""
    register(client, EMAIL)
    wrong = client.post("/oauth/token", data=password_form(password="not the password"))
    unknown = client.post("/oauth/token", data=password_form("ghost@example.com", PASSWORD))
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.content == unknown.content
    assert sorted(wrong.headers.keys()) == sorted(unknown.headers.keys())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_unknown_user_and_wrong_password_take_the_same_time(client: TestClient) -> None:
    """E3: median latency over 200 tries each differs by < 10 ms (dummy argon2 verify).
    One backend only: the property is in the hashing path, which both share."""
    register(client, EMAIL)
    wrong = password_form(password="not the password")
    unknown = password_form("ghost@example.com", "not the password")
    timings: dict[str, list[float]] = {"wrong": [], "unknown": []}
    for _ in range(200):
        for name, form in (("wrong", wrong), ("unknown", unknown)):  # interleaved: no drift
            start = time.perf_counter()
            response = client.post("/oauth/token", data=form)
            timings[name].append(time.perf_counter() - start)
            assert response.status_code == 400
    gap = abs(statistics.median(timings["wrong"]) - statistics.median(timings["unknown"]))
    assert gap < 0.010, f"median gap {gap * 1000:.1f} ms"
    # The dummy verify must really be argon2, not a shortcut: both take real work.
    assert statistics.median(timings["unknown"]) > 0.005


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) in range(1, 61)
    if response.request.url.path == "/oauth/token":
        assert_oauth_error(response, 429, "slow_down")


def test_per_account_throttle_answers_429_with_retry_after(client_with: ClientFactory) -> None:
    """E4: after the per-account limit, even the right password gets 429 + Retry-After."""
    client = client_with(login_limit_per_account="3/minute")
    register(client, EMAIL)
    for _ in range(3):
        assert client.post("/oauth/token", data=password_form(password="bad")).status_code == 400
    _assert_throttled(client.post("/oauth/token", data=password_form(password="bad")))
    _assert_throttled(client.post("/oauth/token", data=password_form()))
    # Throttling is per account: another account from the same IP still logs in.
    register(client, "bob@example.com")
    assert client.post("/oauth/token", data=password_form("bob@example.com")).status_code == 200


def test_guesses_sent_at_once_do_not_outrun_the_throttle(client_with: ClientFactory) -> None:
    """E4: twelve wrong guesses for one account sent at the same moment: only the
    limit's worth are checked (400), the rest are throttled (429), although none
    has failed yet when the others arrive (logins are awaited on the event loop)."""
    client = client_with(login_limit_per_account="3/minute")
    register(client, EMAIL)
    start = threading.Barrier(12)

    def guess(_: int) -> int:
        start.wait(timeout=30)
        return client.post("/oauth/token", data=password_form(password="bad")).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(guess, range(12)))
    assert statuses == [400] * 3 + [429] * 9
    _assert_throttled(client.post("/oauth/token", data=password_form()))


def test_per_ip_throttle_counts_failures_across_accounts(client_with: ClientFactory) -> None:
    """E4: many accounts tried from one IP hit the per-IP limit."""
    client = client_with(login_limit_per_ip="3/minute")
    register(client, EMAIL)
    for i in range(3):
        form = password_form(f"victim{i}@example.com", "bad")
        assert client.post("/oauth/token", data=form).status_code == 400
    _assert_throttled(client.post("/oauth/token", data=password_form()))


def test_basic_auth_shares_the_login_throttle(client_with: ClientFactory) -> None:
    """E4: HTTP Basic on /users/me is throttled like the password grant, and the
    two count failures together."""
    client = client_with(login_limit_per_account="3/minute")
    register(client, EMAIL)
    for _ in range(2):
        assert client.get("/users/me", headers=user_basic(EMAIL, "bad")).status_code == 401
    assert client.post("/oauth/token", data=password_form(password="bad")).status_code == 400
    _assert_throttled(client.get("/users/me", headers=user_basic(EMAIL, PASSWORD)))
    _assert_throttled(client.post("/oauth/token", data=password_form()))


def test_throttle_has_no_permanent_lockout(client_with: ClientFactory) -> None:
    """E4: once the window has slid past the failures, the account works again."""
    client = client_with(login_limit_per_account="2/2 seconds")
    register(client, EMAIL)
    for _ in range(2):
        assert client.post("/oauth/token", data=password_form(password="bad")).status_code == 400
    _assert_throttled(client.post("/oauth/token", data=password_form()))
    time.sleep(2.5)
    assert client.post("/oauth/token", data=password_form()).status_code == 200
    assert client.get("/users/me", headers=user_basic(EMAIL, PASSWORD)).status_code == 200


def test_tokens_name_the_client_and_default_to_the_builtin_one(
    app: FastAPI, client: TestClient
) -> None:
    """C1 control: a public first-party client may use the password grant; with no
    client_id the built-in first-party client is the one the token names."""
    register(client, EMAIL)
    add_client(app, "spa", first_party=True)
    assert jwt_claims(login(client, EMAIL, client_id="spa")["access_token"])["client_id"] == "spa"
    default = login(client, EMAIL)["access_token"]
    assert jwt_claims(default)["client_id"] == "userservice-frontend"
