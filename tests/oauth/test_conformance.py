"""Authorization and token endpoint conformance: request objects and dynamic
registration refused (S6), a missing response_type, the grants discovery lists
(S6), one client authentication method per request (S8), client_credentials'
default scope (RFC 6749 §3.3), and error descriptions' characters (S7)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support import oauth_flow
from tests.support.accounts import ISSUER, PASSWORD, register
from tests.support.oauth_clients import (
    EMAIL,
    SECRET,
    add_client,
    add_service_client,
    basic_auth,
    password_form,
)
from tests.support.oauth_errors import assert_safe_description
from tests.support.oauth_flow import (
    add_app,
    assert_error_page,
    authorize_url,
    get,
    query,
    signed_in,
)

# Every grant type with a registered name that a client could try (RFC 6749, RFC 8628,
# RFC 7523, RFC 7522, RFC 8693, OIDC CIBA): discovery must list exactly those that work.
CANDIDATE_GRANTS = (
    "authorization_code",
    "refresh_token",
    "password",
    "client_credentials",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:saml2-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:openid:params:grant-type:ciba",
)
SERVICE = "everything-backend"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _back(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(oauth_flow.REDIRECT + "?"), location
    return query(location)


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ],
)
@pytest.mark.parametrize("signed", [False, True])
def test_s6_request_objects_and_registration_are_refused(
    client: TestClient, parameter: str, error: str, signed: bool
) -> None:
    """S6, OIDC Core §3.1.2.6: redirected with state and iss to a valid redirect URI,
    our error page otherwise; never a code."""
    add_app(client, first_party=True)
    if signed:
        signed_in(client)
    value = "eyJhbGciOiJub25lIn0.e30." if parameter == "request" else "https://x.example/r"
    back = _back(get(client, authorize_url(state="st6", **{parameter: value})))
    assert back["error"] == error and back["state"] == "st6" and back["iss"] == ISSUER
    assert "code" not in back
    assert_safe_description(back.get("error_description", ""), [value])
    unregistered = authorize_url(redirect_uri="https://evil.example/cb", **{parameter: value})
    assert_error_page(get(client, unregistered))


def test_s6_discovery_says_request_objects_are_not_supported(client: TestClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        meta = client.get(path).json()
        assert meta["request_parameter_supported"] is False
        assert meta["request_uri_parameter_supported"] is False


def test_missing_response_type_is_invalid_request(client: TestClient) -> None:
    """RFC 6749 §4.1.2.1: a missing required parameter is invalid_request, sent back
    to a valid redirect URI; to our error page when the redirect URI is not."""
    add_app(client)
    back = _back(get(client, authorize_url(omit=["response_type"], state="mr")))
    assert back["error"] == "invalid_request" and back["state"] == "mr"
    assert back["iss"] == ISSUER
    bad = authorize_url(omit=["response_type"], redirect_uri="https://evil.example/cb")
    assert_error_page(get(client, bad))


def _attempt(client: TestClient, grant: str) -> httpx.Response:
    """One honest try of `grant` at the token endpoint with a client registered
    for it."""
    auth = basic_auth(SERVICE, SECRET)
    if grant == "authorization_code":
        code, verifier = oauth_flow.obtain_code(client, "code-app")
        return oauth_flow.redeem(client, code, verifier, "code-app", secret=oauth_flow.SECRET)
    form: dict[str, str] = {"grant_type": grant}
    if grant == "password":
        form = password_form()
    elif grant == "refresh_token":
        issued = client.post("/oauth/token", data=password_form(), headers=auth)
        form["refresh_token"] = issued.json()["refresh_token"]
    response: httpx.Response = client.post("/oauth/token", data=form, headers=auth)
    return response


def test_s6_grant_types_supported_lists_exactly_the_grants_that_work(
    app: FastAPI, client: TestClient
) -> None:
    add_client(
        app,
        SERVICE,
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=CANDIDATE_GRANTS,
        scope="openid profile email offline_access",
        first_party=True,
    )
    add_app(client, "code-app", confidential=True, first_party=True)
    signed_in(client)
    working = set()
    for grant in CANDIDATE_GRANTS:
        response = _attempt(client, grant)
        if response.status_code == 200:
            assert response.json()["access_token"], response.text
            working.add(grant)
        else:
            assert response.json()["error"] == "unsupported_grant_type", (grant, response.text)
    advertised = client.get("/.well-known/openid-configuration").json()
    assert set(advertised["grant_types_supported"]) == working
    assert len(advertised["grant_types_supported"]) == len(working)


def _two_methods_clients(app: FastAPI) -> None:
    add_client(
        app,
        SERVICE,
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("password", "refresh_token", "client_credentials", "authorization_code"),
        scope="openid profile",
        first_party=True,
    )


TWO_METHOD_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/oauth/token", password_form()),
    ("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x" * 43}),
    ("/oauth/token", {"grant_type": "client_credentials"}),
    ("/oauth/token", {"grant_type": "authorization_code", "code": "x" * 43}),
    ("/oauth/revoke", {"token": "x" * 43}),
    ("/oauth/introspect", {"token": "x" * 43}),
]


@pytest.mark.parametrize(("path", "form"), TWO_METHOD_REQUESTS)
@pytest.mark.parametrize(
    "body_credentials",
    [
        {"client_secret": SECRET},
        {"client_id": SERVICE, "client_secret": SECRET},
        {"client_id": "someone-else"},
    ],
)
def test_s8_two_client_authentication_methods_are_invalid_request(
    app: FastAPI,
    client: TestClient,
    path: str,
    form: dict[str, str],
    body_credentials: dict[str, str],
) -> None:
    """S8, RFC 6749 §2.3: Basic credentials and a secret (or another client) in the
    body: one request, one method; refused before anything is looked at."""
    _two_methods_clients(app)
    register(client, EMAIL)
    response = client.post(
        path, data={**form, **body_credentials}, headers=basic_auth(SERVICE, SECRET)
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and "access_token" not in body
    assert_safe_description(body["error_description"], [SECRET])


def test_s8_basic_with_the_same_client_id_in_the_body_is_one_method(
    app: FastAPI, client: TestClient
) -> None:
    _two_methods_clients(app)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": SERVICE},
        headers=basic_auth(SERVICE, SECRET),
    )
    assert response.status_code == 200, response.text


def test_client_credentials_without_scope_gets_the_registered_scopes(
    app: FastAPI, client: TestClient
) -> None:
    """RFC 6749 §3.3: the documented default is the client's whole registration."""
    registered = "openid users:read"
    add_service_client(app, scope=registered)
    for form in (
        {"grant_type": "client_credentials"},
        {"grant_type": "client_credentials", "scope": ""},
    ):
        response = client.post("/oauth/token", data=form, headers=basic_auth("reporting", SECRET))
        assert response.status_code == 200, response.text
        assert set(response.json()["scope"].split()) == set(registered.split())


UNSAFE = ['é"\\x00', "tök\\én", 'a"b\\c\x7fd', 'nul\x00byte"']


@pytest.mark.parametrize("value", UNSAFE)
def test_s7_token_endpoint_descriptions_never_echo(
    app: FastAPI, client: TestClient, value: str
) -> None:
    """S7: whatever is sent, error_description stays within RFC 6749 §5.2's
    characters and holds none of it."""
    _two_methods_clients(app)
    auth = basic_auth(SERVICE, SECRET)
    sent: list[tuple[str, dict[str, str] | list[tuple[str, str]], dict[str, str]]] = [
        ("/oauth/token", {"grant_type": value}, auth),
        ("/oauth/token", [("grant_type", "password"), (value, "1"), (value, "2")], auth),
        ("/oauth/token", {"grant_type": "password", "username": value, "password": value}, auth),
        ("/oauth/token", {"grant_type": "client_credentials", "scope": value}, auth),
        ("/oauth/token", {"grant_type": "authorization_code", "code": value}, auth),
        ("/oauth/token", {"grant_type": "refresh_token", "refresh_token": value}, auth),
        ("/oauth/token", {"grant_type": "password", "client_id": value}, {}),
        ("/oauth/revoke", {"token": value, "client_id": value}, {}),
        ("/oauth/introspect", {"token": value}, basic_auth(value, value)),
    ]
    for path, form, headers in sent:
        response = client.post(path, content=urlencode(form), headers={**FORM, **headers})
        assert 400 <= response.status_code < 500, (path, form, response.text)
        assert_safe_description(response.json()["error_description"], [value])
        challenge = response.headers.get("www-authenticate", "")
        assert value not in challenge


@pytest.mark.parametrize("value", UNSAFE)
def test_s7_authorize_redirect_descriptions_never_echo(client: TestClient, value: str) -> None:
    add_app(client)
    for change in ({"scope": "openid " + value}, {"code_challenge_method": value}):
        back = _back(get(client, authorize_url(**change)))
        assert back["error"] in ("invalid_scope", "invalid_request"), back
        assert_safe_description(back.get("error_description", ""), [value])


def test_s7_password_grant_description_holds_no_password(client: TestClient) -> None:
    register(client, EMAIL)
    wrong = PASSWORD + "-wrong"
    response = client.post("/oauth/token", data=password_form(password=wrong))
    assert response.status_code == 400
    assert_safe_description(response.json()["error_description"], [wrong, EMAIL])
