"""The methods a path supports, for `Allow` on a 405 (RFC 9110 §15.5.6).

Starlette answers a 405 with the methods of the first route whose path matched,
but one path is often served by several routes (GET, PATCH and DELETE on
/users/me are three). The answer here asks every route, so `Allow` lists each
method that would have been served.
"""

from __future__ import annotations

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Scope

# Every method a route of ours can be declared with. OPTIONS is listed only if a
# route serves it: CORS preflights are answered by the CORS middleware before
# routing, and are not a method of the resource.
_CANDIDATES = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """The methods some route serves at this request's path; empty when none is a
    plain route (a mount such as /static answers for itself)."""
    router = getattr(app, "router", None)
    routes = [r for r in getattr(router, "routes", ()) if not isinstance(r, Mount)]
    allowed: list[str] = []
    for method in _CANDIDATES:
        # A fresh scope per probe: matching writes routing state into the scope.
        probe: Scope = {
            "type": "http",
            "method": method,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "headers": [],
            "path_params": {},
        }
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed
