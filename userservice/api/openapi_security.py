"""Security requirements in the OpenAPI document, declared without runtime cost.

FastAPI learns security schemes from `Security` sub-dependencies, which it then
runs on every request. Ours are parsed in one dependency (api/deps.py), so the
schemes are added to the generated document here instead: each operation whose
dependencies include a principal dependency gets OAuth2 (password flow, for the
docs' Authorize button) or HTTP Basic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from userservice.api.deps import SCOPES, current_principal, user_or_service_principal

BEARER = "OAuth2PasswordBearer"
BASIC = "HTTPBasic"
_PRINCIPAL_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset(
    {current_principal, user_or_service_principal}
)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _secured_operations(routers: Iterable[APIRouter]) -> set[tuple[str, str]]:
    # The routers, not app.routes: FastAPI wraps included routers in its own route
    # objects; ours carry their prefix, so their routes' paths are final.
    secured: set[tuple[str, str]] = set()
    for route in (r for router in routers for r in router.routes):
        if (
            isinstance(route, APIRoute)
            and route.include_in_schema
            and any(call in _PRINCIPAL_DEPENDENCIES for call in _calls(route.dependant))
        ):
            secured.update((route.path_format, m.lower()) for m in route.methods or ())
    return secured


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
            for path, method in _secured_operations(routers):
                operation = schema["paths"].get(path, {}).get(method)
                if operation is not None:
                    operation["security"] = [{BEARER: []}, {BASIC: []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
