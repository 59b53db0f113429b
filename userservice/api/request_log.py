"""Pure ASGI middleware: one access record and one metrics observation per request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from userservice.observability.metrics import NoMetrics


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: NoMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
