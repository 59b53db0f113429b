"""Pure ASGI middleware: the request's id and trace context, then one access record
and one metrics observation per request.

Pure ASGI rather than BaseHTTPMiddleware: no task per request, no body buffering,
and the context variable set here is seen by everything the request runs.
"""

from __future__ import annotations

import logging
from time import perf_counter
from urllib.parse import quote

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userservice.logging_config import redacted_path
from userservice.observability.logs import (
    BRIEF,
    RequestContext,
    RequestIds,
    current_request,
    parse_traceparent,
    well_formed_request_id,
)
from userservice.observability.metrics import NoMetrics

access_log = logging.getLogger("userservice.access")

UNMATCHED = "unmatched"
# The JSON access record's message: its fields already say everything else.
ACCESS_BRIEF = "request"
# O2: a client can send any token as its method; the metric label takes only these.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_USER_AGENT = 256
# nginx's "client closed request": the request ended before any response started
# because the client went away or a shutdown's grace period cut it, not a fault
# of ours (a 500 would page someone for a client's hang-up).
CLIENT_CLOSED = 499


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: NoMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        # As it came: routing into a mount (/static) rewrites the scope's paths.
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        request_id = trace = user_agent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                trace = parse_traceparent(value.decode("latin-1"))
            elif name == b"user-agent":
                user_agent = value
        # O4, O6: a proxy's id is kept only when it cannot forge anything.
        if not well_formed_request_id(request_id):
            request_id = self.ids.new()
        assert request_id is not None
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        context = RequestContext(request_id, *(trace or (None, None)))
        reset = current_request.set(context)
        status = 500
        started = False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as error:
            # The error is answered (500) and logged by the handlers outside this
            # middleware: the context stays set for their lines (the task ends with
            # the request, taking the value with it).
            if not started and _client_gone(error):
                status = CLIENT_CLOSED
            self._finish(scope, path, root_path, context, status, start, user_agent)
            raise
        self._finish(scope, path, root_path, context, status, start, user_agent)
        current_request.reset(reset)

    def _finish(
        self,
        scope: Scope,
        path: str,
        root_path: str,
        context: RequestContext,
        status: int,
        start: float,
        user_agent: bytes | None,
    ) -> None:
        observe = self.metrics.enabled
        logged = access_log.isEnabledFor(logging.INFO)
        if not observe and not logged:
            # Neither reads anything: no route lookup, no record built.
            return
        seconds = perf_counter() - start
        template = _template(scope, root_path)
        method: str = scope["method"]
        if observe:
            self.metrics.observe_request(
                method if method in KNOWN_METHODS else "other", template, status, seconds
            )
        if not logged:
            return
        path = _logged_path(path, scope.get("query_string", b""))
        client = scope.get("client")
        address = _unquoted(client[0]) if client else "unknown"
        state = scope["state"]
        fields = {
            "method": method,
            "route": template,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": address,
            "client_id": state.get("client_id"),
            "user_id": state.get("user_id"),
            "user_agent": user_agent[:MAX_USER_AGENT].decode("latin-1") if user_agent else None,
        }
        # Made and handled directly: `info()` would also walk the stack for the
        # caller's file and line, which no format shows, on every request.
        record = access_log.makeRecord(
            access_log.name,
            logging.INFO,
            __file__,
            0,
            '%s "%s %s HTTP/%s" %d %.1fms %s',
            (
                address,
                method,
                path,
                scope.get("http_version", "1.1"),
                status,
                seconds * 1000,
                context.request_id,
            ),
            None,
            extra={"fields": fields, BRIEF: ACCESS_BRIEF},
        )
        access_log.handle(record)


def _client_gone(error: BaseException) -> bool:
    """Cancelled (the client disconnected, or the graceful shutdown's time ran out)
    or told by the body's reader that the client went away."""
    return isinstance(error, (anyio.get_cancelled_exc_class(), ClientDisconnect))


def _template(scope: Scope, root_path: str) -> str:
    """The matched route's template (`/users/{user_id}`), never the raw path (O2).
    A mount (the static files) is not put in the scope as a route, but moves its
    own literal prefix from the path to the root path: that prefix is the label."""
    template = getattr(scope.get("route"), "path_format", None)
    if template:
        return str(template)
    mounted: str = scope.get("root_path", "")
    if len(mounted) > len(root_path) and mounted.startswith(root_path):
        return mounted[len(root_path) :]
    return UNMATCHED


def _logged_path(path: str, query: bytes) -> str:
    """The path as sent, query secrets redacted (L16), with nothing in it that could
    end a text line or a quoted field (O6): the path is re-quoted as uvicorn's
    access log did, and any other quote or control character escaped."""
    path = quote(path)
    if query:
        path = _unquoted(redacted_path(f"{path}?{query.decode('latin-1')}"))
    return path


def _unquoted(value: str) -> str:
    # The address too: behind a trusted proxy it comes from X-Forwarded-For.
    if value.isprintable() and '"' not in value and " " not in value:
        return value
    return quote(value, safe="/?&=%:@!$'()*+,;~[]")
