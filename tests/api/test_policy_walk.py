"""S1: every operation of the OpenAPI document, tried by every kind of caller, does
what the access-policy table says. The expected outcome is worked out here from the
rule's fields, not by Rule.check, so that a wrong check and a wrong table both show;
and the operations come from the document, so a new route is walked the day it ships
and fails here if it has no rule."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, bearer, login, make_admin, register
from tests.support.callers import (
    add_third_party,
    assert_first_party_only,
    assert_insufficient_scope,
    basic_headers,
    service_headers,
    third_party_token,
)
from tests.support.factors import verified
from tests.support.oauth_flow import EMAIL, signed_in
from tests.support.routes import walk_routes
from userservice.api.openapi_security import policy_operation
from userservice.services.policy import POLICY, PUBLIC, Caller, Rule
from userservice.services.scopes import SCOPES

ADMIN_EMAIL = "root@example.com"
TARGET_EMAIL = "target@example.com"
THIRD_PARTY_SCOPE_SETS = (
    "openid",
    "openid profile",
    "openid profile email",
    "openid profile profile:write email offline_access",
)
# Rules a route applies inside itself, beyond its guard's: read_user for another
# user's id, update_me when the body touches the email or the password.
SUB_RULES = {"read_user": ("read_me", "read_other_user"), "update_me": ("change_credentials",)}
USER_KINDS = frozenset({Caller.IN_PERSON, Caller.FIRST_PARTY, Caller.THIRD_PARTY})


@dataclass(frozen=True)
class Who:
    name: str
    kind: Caller | None  # None: anonymous
    scopes: frozenset[str] = frozenset()
    admin: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None
    email: str | None = None


def expected(rule: Rule, who: Who) -> str | None:
    """Why `who` is refused under `rule` (None: admitted), from the rule's fields."""
    if who.kind is None:
        return "unauthenticated"
    if who.kind not in rule.callers:
        third = who.kind is Caller.THIRD_PARTY and Caller.FIRST_PARTY in rule.callers
        return "first_party_only" if third else "forbidden"
    held = set(who.scopes)
    if "admin" in held:
        held |= {"users:read", "users:write"}
    missing = [scope for scope in rule.scopes if scope not in held]
    if missing:
        return "insufficient_scope:" + " ".join(missing)
    if rule.admin and who.kind in USER_KINDS and not who.admin:
        return "forbidden"
    # rule.recent_auth: every caller here logged in (or sent its password) just now.
    return None


def first(*reasons: str | None) -> str | None:
    return next((reason for reason in reasons if reason is not None), None)


def assert_outcome(response: httpx.Response, reason: str | None, hidden: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code < 500, f"{where}: {response.text}"
    if reason is None:
        assert response.status_code not in (401, 403), f"{where}: {response.text}"
    elif reason == "unauthenticated":
        assert response.status_code == 401, f"{where}: {response.text}"
    elif hidden:
        # G2: a user learns nothing of other accounts, not even that they exist.
        assert response.status_code == 404, f"{where}: {response.text}"
    elif reason.startswith("insufficient_scope:"):
        assert_insufficient_scope(response, reason.partition(":")[2])
    elif reason == "first_party_only":
        assert_first_party_only(response)
    else:
        assert response.status_code == 403, f"{where}: {response.text}"
        assert response.json().get("code") not in ("insufficient_scope", "first_party_only")


def _token_caller(name: str, kind: Caller, tokens: dict[str, Any], **user: Any) -> Who:
    return Who(
        name,
        kind,
        frozenset(tokens["scope"].split()),
        headers=bearer(tokens["access_token"]),
        **user,
    )


@pytest.fixture
def callers(client: TestClient, app: FastAPI) -> list[Who]:
    signed_in(client)
    add_third_party(client)
    make_admin(app, ADMIN_EMAIL)
    register(client, TARGET_EMAIL)
    # Proven addresses: only those may set up a second factor (M3), so that an
    # admitted caller's start_totp is admitted all the way.
    verified(app, EMAIL)
    verified(app, ADMIN_EMAIL)
    ada = {"user_id": client.get("/users/me", headers=basic_headers()).json()["id"], "email": EMAIL}
    root_basic = basic_headers(ADMIN_EMAIL)
    root_id = client.get("/users/me", headers=root_basic).json()["id"]
    root = {"user_id": root_id, "email": ADMIN_EMAIL, "admin": True}
    everything = frozenset(SCOPES)  # the user in person holds every scope
    service = service_headers(client)
    return [
        Who("anonymous", None),
        Who("basic", Caller.IN_PERSON, everything, headers=basic_headers(), **ada),
        _token_caller("first-party", Caller.FIRST_PARTY, login(client, EMAIL), **ada),
        *(
            _token_caller(
                f"third-party[{scope}]", Caller.THIRD_PARTY, third_party_token(client, scope), **ada
            )
            for scope in THIRD_PARTY_SCOPE_SETS
        ),
        Who("service", Caller.SERVICE, frozenset({"users:read"}), headers=service),
        _token_caller("admin-first-party", Caller.FIRST_PARTY, login(client, ADMIN_EMAIL), **root),
        Who("admin-basic", Caller.IN_PERSON, everything, headers=root_basic, **root),
    ]


def document_operations(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def route_names(app: FastAPI) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(method, path) -> (route name, policy operation) for every route."""
    found = {}
    for route in walk_routes(app.routes):
        for method in route.methods or ():
            found[(method, route.path_format)] = (route.name, policy_operation(route))
    return found


def test_every_operation_has_a_rule_and_every_rule_an_operation(
    client: TestClient, app: FastAPI
) -> None:
    routes = route_names(app)
    unmapped = []
    used: set[str] = set()
    for method, path, _ in document_operations(client):
        name, operation = routes.get((method, path), ("?", None))
        if operation in POLICY:
            used |= {operation, *SUB_RULES.get(operation, ())}
        elif name not in PUBLIC:
            unmapped.append(f"{method} {path} ({name})")
    assert not unmapped, f"operations without an access rule (S1): {unmapped}"
    assert not set(POLICY) - used, f"rules no route applies: {sorted(set(POLICY) - used)}"


def _concrete(path: str, user_id: str) -> str:
    def fill(match: re.Match[str]) -> str:
        if match[1] == "user_id":
            return user_id
        if match[1] == "passkey_id":
            # The route takes UUIDs only (its path converter): any other text is
            # another path, which no rule guards and so answers 404.
            return str(uuid.uuid4())
        return f"no-such-{match[1].replace('_', '-')}"

    return re.sub(r"\{([^}]+)\}", fill, path)


def _call(client: TestClient, method: str, url: str, who: Who, body: Any = None) -> httpx.Response:
    if method in ("POST", "PUT", "PATCH"):
        body = {} if body is None else body
        return client.request(method, url, json=body, headers=who.headers)
    return client.request(method, url, headers=who.headers)


def _takes_basic(operation: dict[str, Any]) -> bool:
    return any("HTTPBasic" in requirement for requirement in operation.get("security", []))


def test_every_operation_against_every_caller(
    client: TestClient, app: FastAPI, callers: list[Who]
) -> None:
    routes = route_names(app)
    target = client.get("/users/me", headers=basic_headers(TARGET_EMAIL)).json()["id"]
    mismatches: list[str] = []
    for method, path, doc in document_operations(client):
        name, operation = routes[(method, path)]
        if operation is None or name in PUBLIC:
            for who in callers:
                response = _call(client, method, _concrete(path, str(uuid.uuid4())), who)
                assert response.status_code < 500, f"{who.name} {method} {path}: {response.text}"
            continue
        if operation in ("delete_me", "end_all_sessions"):
            # Walked by their own tests: an allowed call ends the account, or every
            # token of it, and the callers after it would find theirs dead.
            continue
        for who in callers:
            try:
                _walk(client, method, path, doc, operation, who, target)
            except (AssertionError, KeyError, ValueError) as failure:
                # All of them, not only the first: a table change shows its whole effect.
                mismatches.append(f"{who.name} {method} {path}: {failure!r}")
    assert not mismatches, "\n".join(mismatches)


def _walk(
    client: TestClient,
    method: str,
    path: str,
    doc: dict[str, Any],
    operation: str,
    who: Who,
    target: str,
) -> None:
    rule = POLICY[operation]
    # A bearer-only resource (userinfo, RFC 6750 §2) treats Basic as no token at all.
    if who.kind is Caller.IN_PERSON and not _takes_basic(doc):
        who = Who(f"{who.name} (no bearer token)", None)
    if operation == "read_user":
        _walk_read_user(client, rule, who, target)
        return
    body = {"display_name": "Walker"} if operation == "update_me" else None
    response = _call(client, method, _concrete(path, str(uuid.uuid4())), who, body)
    assert_outcome(response, expected(rule, who))
    if operation == "update_me":
        _walk_change_credentials(client, rule, who)


def _walk_read_user(client: TestClient, rule: Rule, who: Who, target: str) -> None:
    guard = expected(rule, who)
    other = first(guard, expected(POLICY["read_other_user"], who))
    hidden = guard is None and other is not None and who.kind in USER_KINDS
    assert_outcome(client.get(f"/users/{target}", headers=who.headers), other, hidden)
    if who.user_id is not None:
        own = first(guard, expected(POLICY["read_me"], who))
        assert_outcome(client.get(f"/users/{who.user_id}", headers=who.headers), own)


def _walk_change_credentials(client: TestClient, rule: Rule, who: Who) -> None:
    """An email "change" to the same address: harmless, yet account management."""
    body = {"email": who.email or "nobody@example.com", "current_password": PASSWORD}
    reason = first(expected(rule, who), expected(POLICY["change_credentials"], who))
    assert_outcome(client.patch("/users/me", json=body, headers=who.headers), reason)


def test_account_deletion_against_every_caller(client: TestClient, callers: list[Who]) -> None:
    """S2, S3: refused callers leave the account in place; the user in person and a
    first-party token (fresh logins) delete it."""
    rule = POLICY["delete_me"]
    allowed = [who for who in callers if expected(rule, who) is None]
    assert {who.kind for who in allowed} == {Caller.IN_PERSON, Caller.FIRST_PARTY}
    for who in callers:
        if who not in allowed:
            assert_outcome(client.delete("/users/me", headers=who.headers), expected(rule, who))
    assert client.get("/users/me", headers=basic_headers()).json()["email"] == EMAIL
    register(client, "bob@example.com")
    bob = basic_headers("bob@example.com")
    assert expected(rule, Who("bob", Caller.IN_PERSON, frozenset(SCOPES))) is None
    assert client.delete("/users/me", headers=bob).status_code == 204
    assert client.get("/users/me", headers=bob).status_code == 401
    ada_first_party = next(w for w in allowed if w.kind is Caller.FIRST_PARTY and not w.admin)
    assert client.delete("/users/me", headers=ada_first_party.headers).status_code == 204
    assert client.get("/users/me", headers=basic_headers()).status_code == 401
