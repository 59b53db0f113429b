"""RFC 9470 step-up in tests (M12): WWW-Authenticate parsed as RFC 9110 §11.6.1
defines it (not by substring), tokens whose login is of a chosen age and kind, and
the operations whose rule asks for a step-up, found from the app's own routes."""

from __future__ import annotations

import re
import time
import uuid

from fastapi import FastAPI

from tests.support.accounts import bearer
from tests.support.oauth_clients import jwt_claims
from tests.support.routes import walk_routes
from userservice.api.openapi_security import policy_operation
from userservice.services.access_tokens import Grant
from userservice.services.policy import POLICY
from userservice.wiring import wired

# The operations that always ask for a step-up (services/policy.py, M12); those
# that ask for one only where the account has a factor (S3).
ALWAYS_STEP_UP = (
    "delete_me",
    "export_me",
    "start_totp",
    "confirm_totp",
    "remove_totp",
    "regenerate_recovery_codes",
    "passkey_registration_options",
    "register_passkey",
    "rename_passkey",
    "remove_passkey",
    "reset_user_factors",
    "update_mfa_policy",
    "admin_update_user",
    "admin_delete_user",
)
STEP_UP_WITH_FACTOR = ("change_credentials", "change_email")

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string, §11.2 token68.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*(?:,|$)")
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|\s*,|\s*$)")


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """`#challenge` of RFC 9110 §11.6.1: each scheme (lower-cased, §11.1) with its
    auth-params (names lower-cased, §11.2; quoted values unescaped). Raises
    ValueError on anything that is not that grammar, or on a repeated parameter
    (§11.2: each name at most once per challenge)."""
    challenges: list[tuple[str, dict[str, str]]] = []
    rest = header.strip()
    while rest:
        scheme = _SCHEME.match(rest)
        if scheme is None:
            raise ValueError(f"no auth-scheme at {rest!r}")
        rest = rest[scheme.end() :]
        params: dict[str, str] = {}
        while rest and (param := _PARAM.match(rest)):
            name, value = param[1].lower(), param[2]
            if name in params:
                raise ValueError(f"{name} repeated in one challenge")
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[name] = value
            rest = rest[param.end() :]
        challenges.append((scheme[1].lower(), params))
        rest = rest.lstrip(" ,")
    return challenges


def bearer_challenge(header: str) -> dict[str, str]:
    found = [params for scheme, params in parse_challenges(header) if scheme == "bearer"]
    assert len(found) == 1, header
    return found[0]


def token_like(
    app: FastAPI, like: dict[str, str], *, age: int, amr: tuple[str, ...]
) -> dict[str, str]:
    """A first-party access token of the user and client of `like` (a bearer
    header), signed by the server's own key, for a login `age` seconds ago whose
    methods were `amr` (M5)."""
    claims = jwt_claims(like["Authorization"][7:])
    user = wired(app).accounts.get(uuid.UUID(claims["sub"]))
    grant = Grant(auth_time=int(time.time()) - age, amr=amr)
    token = wired(app).tokens.signer.for_user(
        user.id, user.tokens_valid_after, claims["client_id"], claims["scope"], grant
    )
    return bearer(token)


def with_claim(app: FastAPI, like: dict[str, str], **claims: object) -> dict[str, str]:
    """`like`'s token re-signed with claims replaced: a token the server itself
    signed whose content no sign-in would produce (a malformed amr, say)."""
    body = {**jwt_claims(like["Authorization"][7:]), **claims}
    signer = wired(app).tokens.signer
    return bearer(signer.keys.sign(body, signer.settings.alg, "at+jwt"))


def step_up_operations(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, operation) of every route whose guard's rule has a step-up."""
    found = set()
    for route in walk_routes(app.routes):
        operation = policy_operation(route)
        if operation is not None and POLICY[operation].step_up is not None:
            found |= {(method, route.path_format, operation) for method in route.methods}
    return sorted(found)
