"""Every route of the app with its effective dependencies, and the routes the access
policy reserves for admins: for the tests that walk the whole API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from userservice.api.openapi_security import policy_operation
from userservice.services.policy import POLICY


def walk_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint with its effective dependencies. FastAPI >= 0.16x keeps included
    routers as lazy `_IncludedRouter` entries whose `effective_route_contexts()` carry
    the prefixed path and the include-level dependencies; Mounts and sub-routers
    expose `.routes`. Duck-typed so that a router nested either way is found."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            yield from walk_routes(list(contexts()))
            continue
        if isinstance(route, APIRoute) or getattr(route, "dependant", None) is not None:
            yield route
        nested = getattr(route, "routes", None)
        if nested:
            yield from walk_routes(nested)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = set()
    for route in walk_routes(app.routes):
        operation = policy_operation(route)
        if operation is not None and POLICY[operation].admin:
            for method in route.methods:
                found.add((method, route.path_format))
    return sorted(found)
