"""max_age at the authorization endpoint (D10, OIDC Core §3.1.2.1), in-process
over HTTPS on SQLite and PostgreSQL: 0 forces a login like prompt=login and the
ID token then carries the new login's auth_time (OIDC Core §2: required when
max_age was asked); a login older than max_age forces one (prompt=none:
login_required), a younger one does not; odd values are ignored, never a 500."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import register
from tests.support.oauth_flow import (
    EMAIL,
    add_app,
    authorize_url,
    get,
    login_via,
    pkce,
    query,
    signed_in,
)
from tests.support.step_up import (
    NONCE,
    checked_id_token,
    code_tokens,
    next_of,
    pwd_session,
)
from userservice.services.assurance import ACR_PASSWORD


def test_d10_max_age_0_forces_a_login_and_the_id_token_has_auth_time(
    client: TestClient,
) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    time.sleep(1.05)
    verifier, challenge = pkce()
    forced = get(client, authorize_url(challenge=challenge, max_age="0", nonce=NONCE))
    assert forced.status_code == 303
    next_of(forced.headers["location"])
    typed_at = int(time.time())
    login = login_via(client, forced.headers["location"])
    done = get(client, login.headers["location"])
    assert done.status_code == 302, done.text
    id_token = checked_id_token(client, code_tokens(client, done.headers["location"], verifier))
    # OIDC Core §2: auth_time is required when max_age was requested; it is the
    # new login's, not the earlier session's.
    assert typed_at - 1 <= id_token["auth_time"] <= typed_at + 2


def test_d10_max_age_shorter_than_the_session_forces_a_login(client: TestClient) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    time.sleep(2.1)  # the session is now older than one second
    assert get(client, authorize_url(max_age="60")).status_code == 302
    forced = get(client, authorize_url(max_age="1", prompt="none", state="s-old"))
    back = query(forced.headers["location"])
    assert back["error"] == "login_required" and back["state"] == "s-old"
    forced = get(client, authorize_url(max_age="1"))
    assert forced.status_code == 303
    next_of(forced.headers["location"])


def test_d10_an_hour_old_login_meets_max_age_7200_not_600(client: TestClient) -> None:
    add_app(client, first_party=True)
    user_id = uuid.UUID(register(client, EMAIL, display_name="Ada")["id"])
    pwd_session(client, user_id, auth_time=int(time.time()) - 3600)
    assert get(client, authorize_url(max_age="7200")).status_code == 302
    forced = get(client, authorize_url(max_age="600"))
    assert forced.status_code == 303
    next_of(forced.headers["location"])
    # acr_values the old login meets change nothing about its age.
    forced = get(client, authorize_url(max_age="600", acr_values=ACR_PASSWORD))
    assert forced.status_code == 303


@pytest.mark.parametrize("max_age", ["²", "\u0661", "-1", "1e3", " 5", "abc", "9" * 40, "9" * 4301])
def test_d10_odd_max_age_values_are_never_a_500(client: TestClient, max_age: str) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    response = get(client, authorize_url(max_age=max_age, acr_values=ACR_PASSWORD))
    assert response.status_code in (302, 303, 400), response.text
