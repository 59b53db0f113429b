"""S7: every parameter of the OAuth endpoints fuzzed with hypothesis, in process.

Each example starts from a request that works (or nearly: codes and refresh
tokens get used up) and, parameter by parameter, keeps it, drops it, repeats it
or replaces it with text from the whole of Unicode (NUL, controls, `\\`, `"`,
very long values). Whatever comes in:

- never a 5xx;
- every `error_description` (JSON body, redirect, WWW-Authenticate) stays within
  RFC 6749 §5.2's characters and holds none of the fuzzed values (a mark put
  into them shows an echo);
- /oauth/authorize with an unregistered redirect URI never answers with a
  Location header (A2).

Bounded: a fixed number of examples per endpoint, derandomized, and a time budget
per test after which the remaining examples return at once. SQLite for the full
run; one small run on PostgreSQL."""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from tests.support import oauth_flow
from tests.support.accounts import PASSWORD, login, register
from tests.support.oauth_clients import SECRET, add_client, basic_auth
from tests.support.oauth_errors import ECHO_MARK, assert_safe_description

EXAMPLES = 400
SMOKE_EXAMPLES = 8
BUDGET_SECONDS = 6.0
SERVICE = "fuzz-backend"
MAX_URL = 30_000
FORM = {"content-type": "application/x-www-form-urlencoded"}

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Any code point but lone surrogates (which no UTF-8 request can carry).
_ANY = st.characters(exclude_categories=("Cs",))
_SHARP = st.sampled_from(["\\", '"', "\x00", "\r", "\n", "\x7f", "%", "&", "=", "+", "é", "\u202e"])
_PIECE = st.text(st.one_of(_SHARP, _ANY), max_size=12)
FUZZ = st.one_of(
    st.text(_ANY, max_size=40),
    st.text(st.one_of(_SHARP, _ANY), min_size=1, max_size=12),
    # Marked values: the mark in an answer proves an echo whatever the characters.
    st.builds(lambda head, tail: head + ECHO_MARK + tail, _PIECE, _PIECE),
    # Very long values: a short piece repeated up to several thousand characters.
    st.builds(
        lambda piece, n: piece * n, st.text(_ANY, min_size=1, max_size=6), st.integers(200, 1500)
    ),
)


@dataclass
class World:
    """Real clients, a user, tokens and codes that the base requests use."""

    client: TestClient  # signed in as EMAIL
    anonymous: TestClient  # no cookies at all
    refresh_tokens: list[str] = field(default_factory=list)
    access_token: str = ""
    deadline: float = 0.0
    ran: int = 0

    def start(self) -> None:
        self.deadline = time.monotonic() + BUDGET_SECONDS
        self.ran = 0

    def run(self, runner: Runner, data: st.DataObject) -> None:
        """One example, unless the budget is spent. Once one fails, the budget is
        lifted, so that hypothesis replays and shrinks it in full."""
        if time.monotonic() > self.deadline:
            return
        try:
            runner(self, data)
        except BaseException:
            self.deadline = float("inf")
            raise
        self.ran += 1

    def code(self) -> tuple[str, str]:
        return oauth_flow.obtain_code(self.client, "photo-app")


@pytest.fixture
def world(app: FastAPI, client: TestClient) -> Iterator[World]:
    oauth_flow.add_app(client, "photo-app", first_party=True)
    oauth_flow.add_app(client, "third-app", name="Third")
    add_client(
        app,
        SERVICE,
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("password", "refresh_token", "client_credentials"),
        scope="openid profile email offline_access",
        first_party=True,
    )
    oauth_flow.signed_in(client)
    tokens = login(client, oauth_flow.EMAIL)
    register(client, "other@example.com")
    anonymous = TestClient(app, base_url="https://testserver")
    yield World(
        client,
        anonymous,
        refresh_tokens=[tokens["refresh_token"]],
        access_token=tokens["access_token"],
    )


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, str]) -> list[tuple[str, str]]:
    """The (name, value) pairs to send, made from a base request."""
    pairs: list[tuple[str, str]] = []
    for name, value in base.items():
        action = draw(st.sampled_from(["keep", "keep", "drop", "fuzz", "repeat"]))
        if action == "drop":
            continue
        if action == "fuzz":
            value = draw(FUZZ)
        pairs.append((name, value))
        if action == "repeat":
            pairs.append((name, draw(st.one_of(st.just(value), FUZZ))))
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((draw(FUZZ), draw(FUZZ)))
    return draw(st.permutations(pairs))


def _header(draw: st.DrawFn, valid: str) -> dict[str, bytes]:
    """The Authorization header: the valid one, none, or fuzzed (raw or in Basic)."""
    choice = draw(st.sampled_from(["valid", "valid", "none", "raw", "basic"]))
    if choice == "none":
        return {}
    if choice == "valid":
        return {"authorization": valid.encode()}
    # A header value cannot hold a line break; anything else goes.
    value = draw(FUZZ).replace("\r", "").replace("\n", "")
    if choice == "raw":
        return {"authorization": value.encode()}
    raw = base64.b64encode(f"{value}:{draw(FUZZ)}".encode()).decode()
    return {"authorization": f"Basic {raw}".encode()}


def _descriptions(response: httpx.Response) -> Iterator[str]:
    """Every error_description the response carries, wherever it is."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            yield body.get("error_description", "")
    location = response.headers.get("location")
    if location:
        for name, value in parse_qsl(urlsplit(location).query, keep_blank_values=True):
            if name == "error_description":
                yield value
    for challenge in response.headers.get_list("www-authenticate"):
        yield from re.findall(r'error_description="([^"]*)"', challenge)


def check(response: httpx.Response) -> None:
    # Echoes are found by ECHO_MARK: hypothesis also draws strings from our own
    # source (descriptions included), which a plain "value in text" would flag.
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for description in _descriptions(response):
        assert_safe_description(description)
    is_page = response.headers.get("content-type", "").startswith("text/html")
    if is_page and response.status_code == 400:
        assert ECHO_MARK not in html.unescape(response.text)


def _authorize_base(draw: st.DrawFn) -> dict[str, str]:
    extra = draw(
        st.sampled_from(
            [{}, {"nonce": "n-1"}, {"prompt": "none"}, {"request": "e30"}, {"max_age": "60"}]
        )
    )
    return {
        "response_type": "code",
        "client_id": draw(st.sampled_from(["photo-app", "third-app"])),
        "redirect_uri": oauth_flow.REDIRECT,
        "scope": draw(st.sampled_from(["openid", "openid profile email", "openid offline_access"])),
        "state": "st-1",
        "code_challenge": oauth_flow.pkce()[1],
        "code_challenge_method": "S256",
        **extra,
    }


def _unregistered_redirect(pairs: list[tuple[str, str]]) -> bool:
    # An empty value counts as omitted (RFC 6749 §3.1): the registered one is used.
    return any(k == "redirect_uri" and v and v != oauth_flow.REDIRECT for k, v in pairs)


def _run_authorize(world: World, data: st.DataObject, method: str) -> None:
    pairs = data.draw(mutated(_authorize_base(data.draw)))
    query = urlencode(pairs)
    browser = world.client if data.draw(st.booleans()) else world.anonymous
    if method == "GET":
        # Longer URLs are refused by the HTTP client before they are sent.
        assume(len(query) < MAX_URL)
        response = browser.get("/oauth/authorize?" + query, follow_redirects=False)
    else:
        response = browser.post(
            "/oauth/authorize", content=query, headers=FORM, follow_redirects=False
        )
    check(response)
    if _unregistered_redirect(pairs):
        assert "location" not in response.headers, (pairs, response.headers)


def _token_base(world: World, draw: st.DrawFn, grant: str) -> tuple[dict[str, str], str]:
    """A request for `grant` that works, and the Authorization header it needs."""
    service = basic_auth(SERVICE, SECRET)["Authorization"]
    if grant == "password":
        form = {
            "grant_type": grant,
            "username": oauth_flow.EMAIL,
            "password": PASSWORD,
            "scope": "openid",
        }
        return form, service
    if grant == "refresh_token":
        token = world.refresh_tokens[-1]
        return {"grant_type": grant, "refresh_token": token, "scope": "openid"}, service
    if grant == "client_credentials":
        return {"grant_type": grant, "scope": "openid profile"}, service
    code, verifier = world.code()
    return {
        "grant_type": grant,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": oauth_flow.REDIRECT,
        "client_id": "photo-app",
    }, ""


def _post(
    world: World, path: str, pairs: list[tuple[str, str]], headers: dict[str, bytes]
) -> httpx.Response:
    response: httpx.Response = world.client.post(
        path, content=urlencode(pairs), headers={**FORM, **headers}
    )
    return response


def _run_token(world: World, data: st.DataObject, grant: str) -> None:
    base, auth = _token_base(world, data.draw, grant)
    pairs = data.draw(mutated(base))
    headers = _header(data.draw, auth) if auth else {}
    response = _post(world, "/oauth/token", pairs, headers)
    check(response)
    if response.status_code == 200 and "refresh_token" in response.json():
        world.refresh_tokens.append(response.json()["refresh_token"])


def _run_token_client(world: World, data: st.DataObject, path: str) -> None:
    token = data.draw(st.sampled_from([world.access_token, world.refresh_tokens[0]]))
    base = {"token": token, "token_type_hint": "access_token"}
    pairs = data.draw(mutated(base))
    headers = _header(data.draw, basic_auth(SERVICE, SECRET)["Authorization"])
    check(_post(world, path, pairs, headers))


def _run_userinfo(world: World, data: st.DataObject) -> None:
    headers = _header(data.draw, f"Bearer {world.access_token}")
    if data.draw(st.booleans()):
        value = data.draw(FUZZ).replace("\r", "").replace("\n", "")
        headers = {"authorization": f"Bearer {value}".encode()}
    if data.draw(st.booleans()):
        response = world.client.get("/oauth/userinfo", headers=headers)
    else:
        pairs = data.draw(mutated({"access_token": world.access_token}))
        response = _post(world, "/oauth/userinfo", pairs, headers)
    check(response)


Runner = Callable[[World, st.DataObject], None]
RUNNERS: dict[str, Runner] = {
    "authorize GET": lambda w, d: _run_authorize(w, d, "GET"),
    "authorize POST": lambda w, d: _run_authorize(w, d, "POST"),
    "token password": lambda w, d: _run_token(w, d, "password"),
    "token refresh_token": lambda w, d: _run_token(w, d, "refresh_token"),
    "token client_credentials": lambda w, d: _run_token(w, d, "client_credentials"),
    "token authorization_code": lambda w, d: _run_token(w, d, "authorization_code"),
    "revoke": lambda w, d: _run_token_client(w, d, "/oauth/revoke"),
    "introspect": lambda w, d: _run_token_client(w, d, "/oauth/introspect"),
    "userinfo": _run_userinfo,
}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("endpoint", sorted(RUNNERS))
def test_s7_fuzzed_oauth_endpoints(world: World, endpoint: str) -> None:
    run = RUNNERS[endpoint]

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        world.run(run, data)

    world.start()
    fuzz()
    # The budget must not make the test vacuous.
    assert world.ran >= 20, world.ran


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_s7_fuzzed_oauth_endpoints_smoke_on_postgresql(world: World) -> None:
    """A few examples per endpoint on PostgreSQL: NUL and long values reach its
    queries too (its text type refuses NUL)."""
    for run in RUNNERS.values():

        @settings(FUZZ_SETTINGS, max_examples=SMOKE_EXAMPLES)
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            world.run(run, data)  # noqa: B023

        world.start()
        fuzz()
        assert world.ran >= 1, run
