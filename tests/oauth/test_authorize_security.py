"""GET/POST /oauth/authorize against A1-A4, A6, A7, A9-A12, B1, B2 and the prompt /
max_age part of D10, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, register
from tests.support.oauth_errors import assert_safe_description
from tests.support.oauth_flow import (
    EMAIL,
    REDIRECT,
    add_app,
    assert_error_page,
    authorize_url,
    decide,
    get,
    login_via,
    query,
    signed_in,
)
from userservice.app import create_app
from userservice.settings import Settings

A1_MUTATIONS = [
    "https://APP.example/callback",
    "https://app.example/Callback",
    "HTTPS://app.example/callback",
    "https://app.example/callback/",
    "https://app.example/callback?x=1",
    "https://app.example/callback#frag",
    "https://app.example.evil.com/callback",
    "https://app.example@evil.com/callback",
    "https://app.example/callback@evil.com",
    "https://app.example/callback/../evil",
    "https://app.example/evil/../callback",
    "https://app.example/callback%2e%2e%2fevil",
    "https://app.example/callback%252f..%252fevil",
    "https://app.example:443/callback",
    "http://app.example/callback",
    " https://app.example/callback",
]


def _location(response_location: str) -> dict[str, str]:
    assert response_location.startswith(REDIRECT + "?"), response_location
    return query(response_location)


@pytest.mark.parametrize("mutated", A1_MUTATIONS)
def test_a1_mutated_redirect_uri_gets_our_error_page(client: TestClient, mutated: str) -> None:
    add_app(client)
    assert_error_page(get(client, authorize_url(redirect_uri=mutated)))


def test_a1_mutated_redirect_uri_refused_for_signed_in_user_too(client: TestClient) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    for mutated in A1_MUTATIONS:
        assert_error_page(get(client, authorize_url(redirect_uri=mutated)))


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "no-such-app"},
        {"client_id": ""},
        {"client_id": "x" * 300},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "javascript:alert(1)"},
    ],
)
def test_a2_unknown_client_or_unregistered_redirect_never_redirects(
    client: TestClient, change: dict[str, str]
) -> None:
    add_app(client)
    assert_error_page(get(client, authorize_url(**change)))


def test_a2_missing_client_id_gets_error_page(client: TestClient) -> None:
    add_app(client)
    assert_error_page(get(client, authorize_url(omit=["client_id"])))


def test_a3_unsupported_response_type(client: TestClient) -> None:
    add_app(client)
    for bad_redirect in ("https://evil.example/cb", REDIRECT + "/"):
        url = authorize_url(response_type="token", redirect_uri=bad_redirect)
        assert_error_page(get(client, url))
    assert_error_page(get(client, authorize_url("no-such-app", response_type="token")))
    response = get(client, authorize_url(response_type="token", state="s1"))
    assert response.status_code == 302
    back = _location(response.headers["location"])
    assert back["error"] == "unsupported_response_type"
    assert back["state"] == "s1" and back["iss"] == ISSUER and "code" not in back


@pytest.mark.parametrize("port", ["", ":1", ":51234", ":65535"])
def test_a4_loopback_redirect_accepts_any_port(client: TestClient, port: str) -> None:
    add_app(client, redirect_uris=["http://127.0.0.1/cb"], first_party=True)
    signed_in(client)
    sent = f"http://127.0.0.1{port}/cb"
    response = get(client, authorize_url(redirect_uri=sent))
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(sent + "?")
    assert "code" in query(response.headers["location"])


@pytest.mark.parametrize(
    "sent",
    [
        "http://127.0.0.1:51234/cb/",
        "http://127.0.0.1:51234/other",
        "http://127.0.0.1:51234/CB",
        "http://127.0.0.1:51234/cb?x=1",
        "http://127.0.0.1:51234/cb#f",
        "https://127.0.0.1:51234/cb",
        "http://localhost:51234/cb",
        "http://127.0.0.2:51234/cb",
        "http://[::1]:51234/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:51234@evil.com/cb",
        "http://127.0.0.1.evil.com:51234/cb",
    ],
)
def test_a4_loopback_nothing_but_the_port_may_vary(client: TestClient, sent: str) -> None:
    add_app(client, redirect_uris=["http://127.0.0.1/cb"])
    assert_error_page(get(client, authorize_url(redirect_uri=sent)))


def test_a6_several_redirect_uris_and_none_sent(client: TestClient) -> None:
    add_app(client, redirect_uris=[REDIRECT, "https://app.example/other"])
    assert_error_page(get(client, authorize_url(omit=["redirect_uri"])))
    # With a single registered URI, leaving it out is allowed (RFC 6749 §3.1.2.3).
    add_app(client, "single", first_party=True)
    signed_in(client)
    response = get(client, authorize_url("single", omit=["redirect_uri"]))
    assert response.status_code == 302 and response.headers["location"].startswith(REDIRECT)


def test_a7_login_answers_303_and_consent_302_or_303(client: TestClient) -> None:
    add_app(client)
    register(client, EMAIL)
    url = authorize_url()
    first = get(client, url)
    assert first.status_code == 303 and first.headers["location"].startswith("/login")
    login = login_via(client, first.headers["location"])
    assert login.status_code == 303
    assert login.headers["location"] == url
    for allow in (False, True):
        decision = decide(client, url, allow=allow)
        assert decision.status_code in (302, 303), decision.text
        assert decision.headers["location"].startswith(REDIRECT + "?")


def test_a9_third_party_consent_names_client_and_scopes_escaped(client: TestClient) -> None:
    name = 'Evil"><script>alert(1)</script>'
    add_app(client, name=name)
    signed_in(client)
    page = get(client, authorize_url(scope="openid email"))
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "Evil&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "See your email address" in page.text and "<code>email</code>" in page.text
    assert "<code>openid</code>" in page.text


def test_a9_remembered_consent_and_prompt_consent(client: TestClient) -> None:
    add_app(client)
    signed_in(client)
    url = authorize_url(scope="openid profile")
    assert decide(client, url).status_code in (302, 303)
    again = get(client, authorize_url(scope="openid profile"))
    assert again.status_code == 302 and "code" in query(again.headers["location"])
    assert get(client, authorize_url(scope="openid", prompt="consent")).status_code == 200
    # A scope not consented to yet asks again.
    assert get(client, authorize_url(scope="openid email")).status_code == 200


def test_a9_first_party_skips_consent(client: TestClient) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    response = get(client, authorize_url())
    assert response.status_code == 302
    assert "code" in _location(response.headers["location"])


def test_a10_iss_on_success_and_error_redirects(client: TestClient) -> None:
    add_app(client)
    signed_in(client)
    denied = _location(decide(client, authorize_url(state="d"), allow=False).headers["location"])
    assert denied["error"] == "access_denied" and denied["iss"] == ISSUER
    allowed = _location(decide(client, authorize_url(state="a")).headers["location"])
    assert "code" in allowed and allowed["iss"] == ISSUER and allowed["state"] == "a"
    bad_scope = get(client, authorize_url(scope="openid admin"))
    assert bad_scope.status_code == 302
    back = _location(bad_scope.headers["location"])
    assert back["error"] == "invalid_scope" and back["iss"] == ISSUER


def test_a11_consent_page_headers_and_no_third_party_urls(client: TestClient) -> None:
    add_app(client)
    signed_in(client)
    page = get(client, authorize_url())
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    urls = re.findall(r'(?:src|href|action)="([^"]*)"', page.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "https://app.example" not in csp


@pytest.mark.parametrize("configured", [False, True])
def test_a12_no_cors_on_authorize(make_settings: Callable[..., Settings], configured: bool) -> None:
    origin = "https://spa.example"
    settings = make_settings(cors_origins=[origin] if configured else [])
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        add_app(client)
        simple = get(client, authorize_url(), headers={"Origin": origin})
        preflight = client.options(
            "/oauth/authorize",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
    for response in (simple, preflight):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("signed", [False, True])
def test_b1_no_code_challenge_is_invalid_request_without_code(
    client: TestClient, signed: bool
) -> None:
    add_app(client, first_party=True)
    if signed:
        signed_in(client)
    url = authorize_url(omit=["code_challenge", "code_challenge_method"], state="s")
    response = get(client, url)
    assert response.status_code == 302
    back = _location(response.headers["location"])
    assert back["error"] == "invalid_request" and "code" not in back
    assert back["state"] == "s" and back["iss"] == ISSUER


@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": "s256"},
        {"code_challenge_method": ""},
        {"code_challenge": "short"},
    ],
)
def test_b2_only_s256_challenges(client: TestClient, change: dict[str, str]) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    for url in (authorize_url(**change), authorize_url(omit=["code_challenge_method"])):
        response = get(client, url)
        assert response.status_code == 302
        back = _location(response.headers["location"])
        assert back["error"] == "invalid_request" and "code" not in back


def test_d10_prompt_none_without_session_is_login_required(client: TestClient) -> None:
    add_app(client, first_party=True)
    response = get(client, authorize_url(prompt="none", state="pn"))
    assert response.status_code == 302
    back = _location(response.headers["location"])
    assert back["error"] == "login_required" and back["state"] == "pn"
    assert back["iss"] == ISSUER and "code" not in back


@pytest.mark.parametrize("force", [{"prompt": "login"}, {"max_age": "0"}])
def test_d10_prompt_login_and_max_age_force_a_fresh_login_without_loop(
    client: TestClient, force: dict[str, str]
) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    forced = get(client, authorize_url(**force))
    assert forced.status_code == 303
    login_location = forced.headers["location"]
    assert login_location.startswith("/login?") and "force=1" in login_location
    login = login_via(client, login_location)
    assert login.status_code == 303
    done = get(client, login.headers["location"])
    assert done.status_code == 302, (done.status_code, done.headers.get("location"))
    assert "code" in _location(done.headers["location"])


def test_d10_recent_login_satisfies_max_age(client: TestClient) -> None:
    add_app(client, first_party=True)
    signed_in(client)
    response = get(client, authorize_url(max_age="3600"))
    assert response.status_code == 302 and "code" in query(response.headers["location"])


def test_d10_prompt_login_consent_keeps_asking_for_consent(client: TestClient) -> None:
    add_app(client)
    signed_in(client)
    assert decide(client, authorize_url()).status_code in (302, 303)  # consent remembered
    forced = get(client, authorize_url(prompt="login consent"))
    assert forced.status_code == 303 and "force=1" in forced.headers["location"]
    login = login_via(client, forced.headers["location"])
    assert "prompt=consent" in login.headers["location"]
    assert get(client, login.headers["location"]).status_code == 200  # the consent page


UNSAFE_REDIRECTS = [
    "https://evil.example/cb\\x",
    'https://evil.example/"cb',
    "https://évil.example/cb",
    "https://app.example/callbäck",
    "https://app.example/callback\x7f",
    "https://app.example/callback\x00",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("redirect_uri", UNSAFE_REDIRECTS)
def test_a2_unregistered_redirect_uri_with_any_character_gets_error_page(
    client: TestClient, redirect_uri: str, method: str
) -> None:
    """A2/S7: an unregistered redirect URI is never echoed into an error
    description (Authlib's own text would hold it, and refuse its characters)."""
    add_app(client)
    url = authorize_url(redirect_uri=redirect_uri)
    response = get(client, url) if method == "GET" else client.post(url, follow_redirects=False)
    assert_error_page(response)
    assert redirect_uri not in response.text


@pytest.mark.parametrize("response_type", ["cödé", 'co"de', "co\\de", "tokén", "\x00"])
def test_a3_unsupported_response_type_with_any_character(
    client: TestClient, response_type: str
) -> None:
    """A3/S7: error page with an unregistered redirect URI, a redirect carrying only
    RFC 6749 §5.2 characters with the registered one."""
    add_app(client)
    bad = authorize_url(response_type=response_type, redirect_uri="https://évil.example/cb")
    assert_error_page(get(client, bad))
    response = get(client, authorize_url(response_type=response_type, state="s2"))
    assert response.status_code == 302, response.text
    back = _location(response.headers["location"])
    assert back["error"] == "unsupported_response_type" and back["state"] == "s2"
    assert back["iss"] == ISSUER and "code" not in back
    assert_safe_description(back.get("error_description", ""), [response_type])
