"""Step-up at the authorization endpoint (M11), in-process over HTTPS on SQLite
and PostgreSQL: `acr_values` (OIDC Core §3.1.2.1) asks for a level the session's
login may not have reached. An account with an authenticator app signs in again
(password, then a code pyotp computes) and the code's ID token says acr mfa; an
account without a factor gets `unmet_authentication_requirements` at the client
(OpenID Connect Core Unmet Authentication Requirements 1.0 §2) with state and
iss (RFC 9207), never a loop; `prompt=none` gets interaction_required (OIDC Core
§3.1.2.6); unknown values are ignored; `max_age=0` with acr_values needs one
login, not two; discovery offers the levels and no `claims` parameter."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.oauth_clients import jwt_claims
from tests.support.oauth_flow import (
    EMAIL,
    REDIRECT,
    add_app,
    authorize_url,
    get,
    login_via,
    pkce,
    query,
    signed_in,
)
from tests.support.oauth_mfa import second_factor_session, with_app
from tests.support.step_up import (
    ISSUER,
    NONCE,
    app_user_with_pwd_session,
    checked_id_token,
    code_tokens,
    next_of,
    second_step,
)
from userservice.services.assurance import ACR_MFA, ACR_PASSWORD

UNMET = "unmet_authentication_requirements"
OTHER_ACR = "urn:example:loa:3"


def _unmet(response: httpx.Response, state: str) -> None:
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    back = query(location)
    assert back["error"] == UNMET and back["state"] == state and back["iss"] == ISSUER
    assert back["error_description"] and "code" not in back


def test_m11_acr_mfa_with_a_pwd_session_forces_a_login_ending_in_mfa(
    client: TestClient,
) -> None:
    add_app(client, first_party=True)
    secret = app_user_with_pwd_session(client)
    verifier, challenge = pkce()
    url = authorize_url(challenge=challenge, acr_values=ACR_MFA, nonce=NONCE, state="s-up")
    forced = get(client, url)
    assert forced.status_code == 303, forced.text
    way_back = next_of(forced.headers["location"])
    # acr_values stays in the way back: the login that comes back is checked again.
    assert parse_qs(urlsplit(way_back).query)["acr_values"] == [ACR_MFA]

    typed_at = int(time.time())
    back_to = second_step(client, login_via(client, forced.headers["location"]), secret)
    assert back_to == way_back
    done = get(client, back_to)
    assert done.status_code == 302, done.text
    assert query(done.headers["location"])["state"] == "s-up"
    tokens = code_tokens(client, done.headers["location"], verifier)
    id_token = checked_id_token(client, tokens)
    assert id_token["acr"] == ACR_MFA and id_token["amr"] == ["pwd", "otp", "mfa"]
    assert typed_at - 1 <= id_token["auth_time"] <= typed_at + 2
    access = jwt_claims(tokens["access_token"])
    assert access["acr"] == ACR_MFA and access["amr"] == id_token["amr"]
    assert access["auth_time"] == id_token["auth_time"]


def test_m11_a_post_form_request_keeps_its_parameters_through_the_step_up(
    client: TestClient,
) -> None:
    """OIDC Core §3.1.2.1: the request may be a POST form; the login returns to a
    GET holding its parameters (the consent form's own fields excepted)."""
    add_app(client, first_party=True)
    secret = app_user_with_pwd_session(client)
    verifier, challenge = pkce()
    form = query(authorize_url(challenge=challenge, acr_values=ACR_MFA, nonce=NONCE))
    form["decision"] = "allow"
    forced = client.post("/oauth/authorize", data=form, follow_redirects=False)
    assert forced.status_code == 303, forced.text
    kept = parse_qs(urlsplit(next_of(forced.headers["location"])).query)
    assert kept["client_id"] == ["photo-app"] and kept["acr_values"] == [ACR_MFA]
    assert "decision" not in kept
    back_to = second_step(client, login_via(client, forced.headers["location"]), secret)
    done = get(client, back_to)
    assert done.status_code == 302, done.text
    id_token = checked_id_token(client, code_tokens(client, done.headers["location"], verifier))
    assert id_token["acr"] == ACR_MFA


def test_m11_an_mfa_session_meets_acr_mfa_without_a_login(client: TestClient) -> None:
    add_app(client, first_party=True)
    user_id, secret = with_app(client, EMAIL)
    second_factor_session(client, user_id, secret)
    verifier, challenge = pkce()
    response = get(client, authorize_url(challenge=challenge, acr_values=ACR_MFA, nonce=NONCE))
    assert response.status_code == 302, response.text
    tokens = code_tokens(client, response.headers["location"], verifier)
    assert checked_id_token(client, tokens)["acr"] == ACR_MFA
    # prompt=none too: nothing to show.
    silent = get(client, authorize_url(acr_values=ACR_MFA, prompt="none"))
    assert silent.status_code == 302 and "code" in query(silent.headers["location"])


@pytest.mark.parametrize("prompt", [{}, {"prompt": "none"}, {"prompt": "consent"}])
def test_m11_a_user_without_a_factor_gets_unmet_authentication_requirements(
    client: TestClient, prompt: dict[str, str]
) -> None:
    add_app(client)
    signed_in(client)
    response = get(client, authorize_url(acr_values=ACR_MFA, state="s-unmet", **prompt))
    _unmet(response, "s-unmet")
    # The same on POST (the consent form's method): never a code.
    posted = client.post(
        authorize_url(acr_values=f"{OTHER_ACR} {ACR_MFA}", state="s-post"),
        data={"decision": "allow"},
        follow_redirects=False,
    )
    _unmet(posted, "s-post")


def test_m11_without_a_session_the_login_comes_first_then_unmet_not_a_loop(
    client: TestClient,
) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    client.cookies.clear()
    url = authorize_url(acr_values=ACR_MFA, state="s-first")
    to_login = get(client, url)
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?")
    login = login_via(client, to_login.headers["location"])
    assert login.status_code == 303, login.text
    # The password alone was all this account can give: the client hears so.
    _unmet(get(client, login.headers["location"]), "s-first")


def test_m11_prompt_none_with_a_factor_to_add_is_interaction_required(
    client: TestClient,
) -> None:
    add_app(client, first_party=True)
    app_user_with_pwd_session(client)
    response = get(client, authorize_url(acr_values=ACR_MFA, prompt="none", state="s-none"))
    assert response.status_code == 302, response.text
    back = query(response.headers["location"])
    assert back["error"] == "interaction_required" and back["state"] == "s-none"
    assert back["iss"] == ISSUER and "code" not in back


@pytest.mark.parametrize(
    "acr_values",
    [
        OTHER_ACR,
        f"{OTHER_ACR} {ACR_PASSWORD}",
        ACR_PASSWORD,
        # Satisfied by either level: the password session will do.
        f"{ACR_MFA} {ACR_PASSWORD}",
        "",
        "urn:userservice:acr:MFA",
    ],
)
def test_m11_unknown_or_met_acr_values_give_a_code(client: TestClient, acr_values: str) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    verifier, challenge = pkce()
    url = authorize_url(challenge=challenge, acr_values=acr_values, nonce=NONCE)
    response = get(client, url)
    assert response.status_code == 302, response.text
    id_token = checked_id_token(client, code_tokens(client, response.headers["location"], verifier))
    # The acr is the level reached, not the one asked for.
    assert id_token["acr"] == ACR_PASSWORD and id_token["amr"] == ["pwd"]


def test_m11_unknown_values_alone_ask_nothing_of_an_app_user(client: TestClient) -> None:
    add_app(client, first_party=True)
    app_user_with_pwd_session(client)
    response = get(client, authorize_url(acr_values=OTHER_ACR, prompt="none"))
    assert response.status_code == 302 and "code" in query(response.headers["location"])


def test_m11_max_age_0_and_acr_values_mfa_need_one_login_not_two(client: TestClient) -> None:
    add_app(client, first_party=True)
    secret = app_user_with_pwd_session(client)
    verifier, challenge = pkce()
    url = authorize_url(challenge=challenge, acr_values=ACR_MFA, max_age="0", nonce=NONCE)
    forced = get(client, url)
    way_back = next_of(forced.headers["location"])
    kept = parse_qs(urlsplit(way_back).query)
    assert "max_age" not in kept and kept["acr_values"] == [ACR_MFA]
    typed_at = int(time.time())
    done = get(client, second_step(client, login_via(client, forced.headers["location"]), secret))
    assert done.status_code == 302, done.text
    id_token = checked_id_token(client, code_tokens(client, done.headers["location"], verifier))
    assert id_token["acr"] == ACR_MFA
    assert typed_at - 1 <= id_token["auth_time"] <= typed_at + 2


def test_m11_discovery_offers_acr_values_but_no_claims_parameter(client: TestClient) -> None:
    found = client.get("/.well-known/openid-configuration").json()
    assert found["acr_values_supported"] == [ACR_PASSWORD, ACR_MFA]
    assert "auth_time" in found["claims_supported"] and "acr" in found["claims_supported"]
    # The `claims` request parameter is not offered: its default, false, stands.
    assert found.get("claims_parameter_supported", False) is False
