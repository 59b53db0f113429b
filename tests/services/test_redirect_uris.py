"""Redirect URIs on their own: what registration accepts (A4, A5) and how a sent URI
is matched against the registered ones (A1, A4). No database needed."""

from __future__ import annotations

import pytest

from userservice.errors import InvalidClientMetadata, InvalidRedirectUri
from userservice.services.redirect_uris import (
    MAX_URI_LENGTH,
    MAX_URIS,
    check_redirect_uri,
    check_redirect_uris,
    check_web_uri,
    redirect_uri_matches,
)

REGISTERED = "https://app.example.com/callback"

# A1 (RFC 9700 §4.1.3): every near miss of the registered URI an attacker might try.
A1_ATTACKS = [
    "https://APP.example.com/callback",  # changed case (host)
    "https://app.example.com/Callback",  # changed case (path)
    "HTTPS://app.example.com/callback",  # changed case (scheme)
    "https://app.example.com/callback/",  # trailing slash
    "https://app.example.com/callback?x=1",  # added query
    "https://app.example.com/callback?",  # empty query
    "https://app.example.com/callback#frag",  # fragment
    "https://app.example.com.evil.com/callback",  # suffix domain
    "https://app.example.com@evil.com/callback",  # userinfo trick
    "https://app.example.com:443@evil.com/callback",
    "https://app.example.com/callback/../evil",  # dot segments
    "https://app.example.com/../callback",
    "https://app.example.com/callback/%2e%2e%2fevil",  # encoded dot segments
    "https://app.example.com/callback%2f..%2fevil",
    "https://app.example.com/callback%252f..%252fevil",  # double encoding
    "https://app.example.com%2fcallback",
    "https://app.example.com:443/callback",  # explicit default port
    "http://app.example.com/callback",  # downgraded scheme
    "https://app.example.com/callback ",  # trailing space
    " https://app.example.com/callback",
    "https://app.example.com/callback\x00",
    "https://app.example.com\\@evil.com/callback",
    "//app.example.com/callback",
    "https://app.example.com/callback" + "a" * 3000,
    "",
]


@pytest.mark.parametrize("sent", A1_ATTACKS)
def test_a1_every_variation_of_a_registered_uri_is_refused(sent: str) -> None:
    assert redirect_uri_matches([REGISTERED], sent) is False
    assert redirect_uri_matches([REGISTERED, "http://127.0.0.1/callback"], sent) is False


def test_a1_the_exact_uri_matches_and_only_among_registered_ones() -> None:
    assert redirect_uri_matches([REGISTERED], REGISTERED) is True
    assert redirect_uri_matches(["https://other.example/cb", REGISTERED], REGISTERED) is True
    assert redirect_uri_matches([], REGISTERED) is False
    assert redirect_uri_matches(["https://other.example/cb"], REGISTERED) is False


@pytest.mark.parametrize(
    ("registered", "sent"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:1/callback"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1:9/callback"),
        ("http://[::1]/callback", "http://[::1]:65535/callback"),
        ("http://127.0.0.1/callback?app=cli", "http://127.0.0.1:4000/callback?app=cli"),
        ("http://127.0.0.1", "http://127.0.0.1:4000"),
    ],
)
def test_a4_loopback_registration_accepts_any_port(registered: str, sent: str) -> None:
    """RFC 8252 §7.3: the native app picks an ephemeral port at run time."""
    assert redirect_uri_matches([registered], sent) is True


@pytest.mark.parametrize(
    "sent",
    [
        "http://127.0.0.1:51234/callback/",  # path changed
        "http://127.0.0.1:51234/Callback",
        "http://127.0.0.1:51234/callback?x=1",  # query added
        "http://127.0.0.1:51234/callback#frag",
        "http://127.0.0.1:51234/callback/../callback",
        "http://127.0.0.1:51234/callback%2f",
        "http://localhost:51234/callback",  # host changed
        "http://[::1]:51234/callback",
        "http://127.0.0.2:51234/callback",
        "http://127.0.0.1.evil.com/callback",
        "http://127.0.0.1:51234@evil.com/callback",
        "http://evil.com@127.0.0.1:51234/callback",
        "https://127.0.0.1:51234/callback",  # scheme changed
        "HTTP://127.0.0.1:51234/callback",
        "http://127.0.0.1:99999/callback",  # not a port
        "http://127.0.0.1:-1/callback",
        "http://127.0.0.1:port/callback",
        "http://127.0.0.1:51234\\callback",
    ],
)
def test_a4_nothing_but_the_port_may_vary_on_loopback(sent: str) -> None:
    assert redirect_uri_matches(["http://127.0.0.1/callback"], sent) is False


def test_a4_port_freedom_is_only_for_loopback_registrations() -> None:
    assert redirect_uri_matches([REGISTERED], "https://app.example.com:8443/callback") is False
    assert redirect_uri_matches(["https://127.0.0.1/cb"], "https://127.0.0.1:8443/cb") is False


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/cb?tenant=1",
        "https://[2001:db8::1]/cb",
        "https://localhost/cb",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]/callback",
        "http://[::1]:51234/cb",
        "http://127.0.0.1",
        "https://app.example.com/.well-known/cb",
        "https://app.example.com/cb%20x",
    ],
)
def test_registration_accepts_https_and_loopback_http(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://app.example.com/cb#frag", "fragment"),
        ("https://app.example.com/cb#", "fragment"),
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("JavaScript:alert(1)", "scheme 'JavaScript'"),
        ("data:text/html,<script>alert(1)</script>", "scheme 'data'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://app.example.com/cb", "scheme 'ftp'"),
        ("com.example.app:/callback", "scheme"),
        ("http://app.example.com/cb", "loopback"),
        ("http://10.0.0.1/cb", "loopback"),
        ("http://127.0.0.2/cb", "loopback"),
        ("http://[::2]/cb", "loopback"),
        ("http://localhost/cb", "RFC 8252 §8.3"),
        ("http://localhost:8080/cb", "RFC 8252 §8.3"),
        ("http://127.0.0.1.evil.com/cb", "loopback"),
        ("https://user@app.example.com/cb", "user information"),
        ("https://user:pw@app.example.com/cb", "user information"),
        ("https://app.example.com@evil.com/cb", "user information"),
        ("https://app.example.com/c b", "printable ASCII"),
        ("https://app.example.com/cb\t", "printable ASCII"),
        ("https://app.example.com/cb\n", "printable ASCII"),
        ("https://app.example.com/cb\x00", "printable ASCII"),
        ("https://app.example.com/caf\u00e9", "printable ASCII"),
        ("https://app.example.com\\@evil.com/cb", "backslash"),
        ("https://app.example.com/" + "a" * MAX_URI_LENGTH, "longer than"),
        ("/callback", "absolute"),
        ("//app.example.com/cb", "absolute"),
        ("HTTPS://app.example.com/cb", "lowercase"),
        ("https:app.example.com/cb", "lowercase"),
        ("https:///cb", "host"),
        ("https://app_example.com/cb", "host"),
        ("https://app.example.com:99999/cb", "port"),
        ("https://app.example.com:/cb", "port"),
        ("http://[::1/cb", "IPv6"),
        ("https://[nothex]/cb", "host"),
        ("https://app.example.com/a/../cb", "segments"),
        ("https://app.example.com/./cb", "segments"),
        ("", "non-empty"),
    ],
)
def test_a5_registration_refuses_dangerous_or_ambiguous_uris(uri: str, reason: str) -> None:
    with pytest.raises(InvalidRedirectUri) as refused:
        check_redirect_uri(uri)
    assert refused.value.code == "invalid_redirect_uri"
    assert reason in refused.value.detail, refused.value.detail


def test_lists_are_bounded_and_free_of_duplicates() -> None:
    many = [f"https://app.example.com/cb{i}" for i in range(MAX_URIS)]
    assert check_redirect_uris(many) == many
    with pytest.raises(InvalidRedirectUri, match="at most 20"):
        check_redirect_uris([*many, "https://app.example.com/one-more"])
    with pytest.raises(InvalidRedirectUri, match="twice"):
        check_redirect_uris([REGISTERED, REGISTERED])
    with pytest.raises(InvalidRedirectUri, match="list"):
        check_redirect_uris(REGISTERED)
    with pytest.raises(InvalidRedirectUri, match="post_logout_redirect_uris"):
        check_redirect_uris(["javascript:x"], "post_logout_redirect_uris")
    assert check_redirect_uris([]) == []


def test_logo_and_home_page_uris_are_https_only() -> None:
    assert check_web_uri("https://app.example.com/logo.png", "logo_uri")
    assert check_web_uri("https://app.example.com/#about", "client_uri")
    for bad in (
        "http://app.example.com/logo.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "https://user@app.example.com/",
        "https://",
        "https://app.example.com/" + "a" * MAX_URI_LENGTH,
    ):
        with pytest.raises(InvalidClientMetadata):
            check_web_uri(bad, "logo_uri")
