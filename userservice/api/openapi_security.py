"""Security requirements in the OpenAPI document, declared without runtime cost.

FastAPI learns security schemes from `Security` sub-dependencies, which it then
runs on every request. Ours are parsed in one dependency per route (the access
policy's guard, api/deps.py), so the schemes are added to the generated document
here instead, from the same policy table the guards apply: each protected operation
gets OAuth2 with the scopes its rule needs (so the docs' Authorize dialog offers
them), and HTTP Basic where the user in person may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from userservice.api.deps import OPERATION_ATTRIBUTE
from userservice.api.schemas import Problem
from userservice.services.assurance import ACR_MFA
from userservice.services.policy import POLICY, RECENT_AUTH_SECONDS, Caller, StepUp
from userservice.services.scopes import SCOPES

BEARER = "OAuth2PasswordBearer"
BASIC = "HTTPBasic"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def policy_operation(route: APIRoute) -> str | None:
    """The policy operation a route is guarded by, if any."""
    for call in _calls(route.dependant):
        operation = getattr(call, OPERATION_ATTRIBUTE, None)
        if isinstance(operation, str):
            return operation
    return None


def _security(operation: str) -> list[dict[str, list[str]]]:
    rule = POLICY[operation]
    requirements = [{BEARER: list(rule.scopes)}]
    if Caller.IN_PERSON in rule.callers:
        requirements.append({BASIC: []})
    return requirements


def _secured_operations(routers: Iterable[APIRouter]) -> dict[tuple[str, str], str]:
    # The routers, not app.routes: FastAPI wraps included routers in its own route
    # objects; ours carry their prefix, so their routes' paths are final.
    secured: dict[tuple[str, str], str] = {}
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute) and route.include_in_schema:
            operation = policy_operation(route)
            if operation is not None:
                methods = route.methods or set()
                secured.update({(route.path_format, m.lower()): operation for m in methods})
    return secured


RETRY_AFTER = {
    "description": "Seconds to wait before trying again (RFC 9110 §10.2.3).",
    "schema": {"type": "integer", "minimum": 1},
}


def _document_throttling(schema: dict[str, Any], token_url: str) -> None:
    """E4: a password is checked, and throttled, by the password grant and by every
    operation that accepts HTTP Basic; each documents its 429 and `Retry-After`, as
    does any other operation that lists a 429."""
    problem = {"$ref": "#/components/schemas/Problem"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            basic = any(BASIC in requirement for requirement in operation.get("security", []))
            if basic or (path, method) == (token_url, "post"):
                responses.setdefault(
                    "429",
                    {
                        "description": "Too many failed sign-ins; retry later",
                        "content": {"application/problem+json": {"schema": problem}},
                    },
                )
            if "429" in responses:
                responses["429"].setdefault("headers", {})["Retry-After"] = RETRY_AFTER


# Rules a route applies inside itself, beyond its guard's (api/users.py: update_me
# applies change_credentials when the body touches the password or the address).
_INNER_RULES = {"update_me": "change_credentials"}
STEP_UP_CHALLENGE = (
    'Bearer realm="userservice", error="insufficient_user_authentication", '
    'error_description="A more recent login with a second factor is required", '
    f'acr_values="{ACR_MFA}", max_age={RECENT_AUTH_SECONDS}'
)


def _step_up(operation: str) -> StepUp | None:
    inner = _INNER_RULES.get(operation)
    return POLICY[operation].step_up or (POLICY[inner].step_up if inner else None)


def _document_step_up(schema: dict[str, Any], secured: dict[tuple[str, str], str]) -> None:
    """M12: a sensitive operation's 401 may be an RFC 9470 §3 challenge; its
    WWW-Authenticate names the level (acr_values, when the account has a second
    factor) and the max_age a new login must meet before the call is retried."""
    for (path, method), name in secured.items():
        mode = _step_up(name)
        operation = schema["paths"].get(path, {}).get(method)
        if mode is None or operation is None:
            continue
        when = (
            "a login older than"
            if mode is StepUp.ALWAYS
            else "for an account with a second factor, a login without it or older than"
        )
        response = operation.setdefault("responses", {}).setdefault(
            "401", {"description": "Unauthorized"}
        )
        response["description"] += (
            f"; `insufficient_user_authentication` (RFC 9470 §3) for {when} "
            f"{RECENT_AUTH_SECONDS} seconds, or a password-only login of an account with "
            "a second factor: sign in again with the challenge's acr_values and max_age"
        )
        response.setdefault("headers", {})["WWW-Authenticate"] = {
            "description": "The RFC 9470 §3 challenge (acr_values only for an account "
            "with a second factor).",
            "schema": {"type": "string", "example": STEP_UP_CHALLENGE},
        }


def install_openapi_security(app: FastAPI, routers: Iterable[APIRouter], token_url: str) -> None:
    generate = app.openapi  # FastAPI's own, which caches in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER] = {
                "type": "oauth2",
                "flows": {"password": {"scopes": dict(SCOPES), "tokenUrl": token_url}},
            }
            schemes[BASIC] = {"type": "http", "scheme": "basic"}
            secured = _secured_operations(routers)
            for (path, method), name in secured.items():
                operation = schema["paths"].get(path, {}).get(method)
                if operation is not None:
                    operation["security"] = _security(name)
            _document_throttling(schema, token_url)
            _document_step_up(schema, secured)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
