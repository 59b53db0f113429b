"""R8: schemathesis over the OpenAPI document, authenticated as an administrator.

Every operation of /openapi.json (form-bodied /oauth/token and /oauth/revoke
included) is called with a bounded, derandomized set of generated requests, in
positive (schema-valid) and negative (schema-violating) generation modes, on
SQLite and on PostgreSQL. Each response must be

- not a server error: no 5xx at all, 503 included (nothing is down here);
- a documented status code for the operation;
- of a documented content type;
- a body that validates against the documented schema.

About half of the positive cases are steered towards real data (an existing user
or client id, a real email and password, a live refresh token) so that the
success paths and their response bodies are validated too, not only the 4xx
answers to random input; about one case in eight keeps the generated (garbage)
credentials instead of the administrator's bearer token. Destructive calls never
touch the administrator the run is authenticated as: DELETE /users/me and DELETE
/users/me/sessions run as a throwaway user made for that call, and admin DELETE
/users/{user_id} only ever targets other users (so the run ends still logged in,
which is asserted).
"""

from __future__ import annotations

import collections
import itertools
import time
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.accounts import PASSWORD, bearer, login, make_admin, register

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 50
BASE_URL = "https://testserver"  # https: HTTP Basic is refused over cleartext
ADMIN = "root@example.com"
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Operations whose success path the run must reach (2xx at least once): proof that
# it was authenticated and steered. Operations added later are fuzzed all the same.
MUST_SUCCEED = {
    "POST /users",
    "GET /users",
    "GET /users/me",
    "PATCH /users/me",
    "DELETE /users/me",
    "GET /users/{user_id}",
    "PATCH /users/{user_id}",
    "DELETE /users/{user_id}",
    "POST /oauth/token",
    "POST /oauth/revoke",
    "GET /oauth/jwks",
    "GET /.well-known/oauth-authorization-server",
    "GET /healthz",
    "GET /readyz",
}


class Fuzzer:
    """Authentication and steering for the generated cases, plus what was seen."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app = app
        self.client = client
        make_admin(app, ADMIN)
        admin_tokens = login(client, ADMIN)
        self.admin_token: str = admin_tokens["access_token"]
        self.admin_id: str = client.get("/users/me", headers=bearer(self.admin_token)).json()["id"]
        # Targets of the admin operations (they may get disabled or deleted on the way).
        self.targets = [register(client, f"target{i}@example.com")["id"] for i in range(3)]
        # Accounts for the token endpoint, never touched by the admin operations.
        self.logins = [f"login{i}@example.com" for i in range(2)]
        for email in self.logins:
            register(client, email)
        self.refresh_tokens: list[str] = [login(client, self.logins[0])["refresh_token"]]
        self.clients: list[str] = []  # registered by POST /admin/clients
        self.serial = itertools.count()
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )

    def throwaway_token(self) -> str:
        email = f"throwaway{next(self.serial)}@example.com"
        register(self.client, email)
        token: str = login(self.client, email)["access_token"]
        return token

    def steer(self, case: Any, pick: int) -> None:
        """Replace generated values with real ones (positive mode only)."""
        op = case.operation
        method, path = op.method.upper(), op.path
        if path == "/users" and method == "POST" and isinstance(case.body, dict):
            # A fresh, valid account (random passwords are mostly refused as weak).
            email = f"fuzz{next(self.serial)}@example.com"
            case.body = {**case.body, "email": email, "password": PASSWORD}
        elif path == "/users/{user_id}":
            ids = self.targets if method == "DELETE" else [self.admin_id, *self.targets]
            case.path_parameters = {**(case.path_parameters or {}), "user_id": ids[pick % len(ids)]}
        elif path.startswith("/admin/clients/{client_id}") and self.clients:
            # Clients this run registered (never the first-party one the logins use);
            # DELETE takes them from the back, the other operations from the front.
            ids = self.clients[::-1] if method == "DELETE" else self.clients
            client_id = ids[pick % len(ids)]
            case.path_parameters = {**(case.path_parameters or {}), "client_id": client_id}
        elif path in ("/oauth/token", "/oauth/revoke") and isinstance(case.body, dict):
            body = {k: v for k, v in case.body.items() if k not in ("client_id", "client_secret")}
            if path == "/oauth/revoke":
                body["token"] = self.refresh_tokens[pick % len(self.refresh_tokens)]
            elif body.get("grant_type") == "password":
                body.update(username=self.logins[pick % len(self.logins)], password=PASSWORD)
            else:
                body["refresh_token"] = self.refresh_tokens[pick % len(self.refresh_tokens)]
            case.body = body

    @staticmethod
    def keep_rule_off(case: Any) -> None:
        """`admins` (M8) and `all` sign out every administrator without a factor at
        once, this run's own included: the rule stays off so the run stays signed in
        (tests/services/test_mfa_policy_bites.py and test_mfa_policy_all.py test
        what switching it does)."""
        body = case.body
        rule = isinstance(body, dict) and body.get("required_for") in ("admins", "all")
        if case.operation.path == "/admin/policies/mfa" and rule:
            case.body = {**body, "required_for": "none"}

    def authorization(self, case: Any, garbage: bool) -> dict[str, str]:
        op = case.operation
        if _form_bodied(op):
            return {}  # token, revoke, introspect: client authentication is in the form
        if garbage and "Authorization" in (case.headers or {}):
            return {}  # now and then the generated (garbage) credentials: a 401
        if op.method.upper() == "DELETE" and op.path in ("/users/me", "/users/me/sessions"):
            # Deleting the account or signing out everywhere ends the caller's token.
            return bearer(self.throwaway_token())
        return bearer(self.admin_token)

    def run(self, operation: Any, mode: schemathesis.GenerationMode) -> None:
        positive = mode == schemathesis.GenerationMode.POSITIVE
        label = f"{operation.label} [{mode.value}]"

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @hypothesis.given(
            case=operation.as_strategy(generation_mode=mode),
            steer=st.booleans(),
            pick=st.integers(0, 5),
            garbage=st.integers(0, 7),  # 5: keep the generated credentials
        )
        def fuzz(case: Any, steer: bool, pick: int, garbage: int) -> None:
            if positive and steer:
                self.steer(case, pick)
            self.keep_rule_off(case)
            response = case.call_and_validate(
                base_url=BASE_URL, headers=self.authorization(case, garbage == 5), checks=CHECKS
            )
            self.statuses[label][response.status_code] += 1
            if operation.path == "/oauth/token" and response.status_code == 200:
                self.refresh_tokens.append(response.json()["refresh_token"])
            if operation.path == "/admin/clients" and response.status_code == 201:
                self.clients.append(response.json()["client_id"])

        fuzz()


def _form_bodied(operation: Any) -> bool:
    return any(body.media_type == "application/x-www-form-urlencoded" for body in operation.body)


def _has_inputs(operation: Any) -> bool:
    # The security schemes' Authorization header does not count: it is replaced.
    names = [p.name for p in operation.iter_parameters() if p.name != "Authorization"]
    return bool(names) or bool(operation.body)


def test_every_operation_survives_authenticated_fuzzing(app: FastAPI, client: TestClient) -> None:
    started = time.monotonic()
    fuzzer = Fuzzer(app, client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"the OpenAPI document has an unusable operation: {result.err()}")
        operations.append(result.ok())
    labels = [operation.label for operation in operations]
    failures: list[str] = []
    try:
        for operation in operations:
            # Negative generation needs something to negate.
            for mode in MODES if _has_inputs(operation) else MODES[:1]:
                try:
                    fuzzer.run(operation, mode)
                except hypothesis.errors.Unsatisfiable:
                    if mode == schemathesis.GenerationMode.POSITIVE:
                        raise
                    # No schema-violating input exists for this operation.
                except (Exception, BaseExceptionGroup) as exc:  # collect them all, fail below
                    failures.append(f"{operation.label} [{mode.value}]:\n{exc}")
    finally:
        asgi.shutdown_lifespans()

    report = "\n".join(f"{k}: {dict(v)}" for k, v in fuzzer.statuses.items())
    print(f"\n{report}\n({time.monotonic() - started:.1f}s)")
    assert not failures, "\n\n".join(failures)

    # The run really exercised the API, and authenticated: every operation was called,
    # and the known ones got past authentication and validation at least once.
    assert len(labels) > 10, labels
    assert set(labels) >= MUST_SUCCEED, MUST_SUCCEED - set(labels)
    per_operation = {label: collections.Counter[int]() for label in labels}
    for label, counter in fuzzer.statuses.items():
        per_operation[label.rsplit(" [", 1)[0]].update(counter)
    assert sum(sum(c.values()) for c in per_operation.values()) > 20 * len(labels), report
    assert all(per_operation.values()), report
    for label in MUST_SUCCEED:
        assert any(200 <= code < 300 for code in per_operation[label]), f"{label}\n{report}"
    # ... and the administrator was still logged in at the end.
    me = client.get("/users/me", headers=bearer(fuzzer.admin_token))
    assert me.status_code == 200 and me.json()["is_admin"], me.text
