"""What the request log costs, in microseconds, in one process (no server, no
network): RequestLogMiddleware around an app that answers at once, driven as
uvicorn drives it, for a Bearer GET /users/me, with the access logger off, writing
text lines and writing JSON lines (to /dev/null, through the handlers and filters
`serve` configures); and the formatters alone, per line.

`python -m bench.log_cost` prints one row per case; the whole service's CPU per
request with JSON logs on and off is bench.ab_observability's."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import time
from collections.abc import Callable
from typing import Any, TextIO

from starlette.types import Message, Receive, Scope, Send

from userservice.api.request_log import RequestLogMiddleware
from userservice.logging_config import log_config
from userservice.observability.logs import JsonFormatter
from userservice.observability.metrics import NoMetrics

REQUESTS = 20_000
LINES = 20_000
ROUNDS = 5
HEADERS = [
    (b"host", b"127.0.0.1:8443"),
    (b"authorization", b"Bearer " + b"x" * 600),
    (b"user-agent", b"python-httpx/0.28.1"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
]
START: Message = {"type": "http.response.start", "status": 200, "headers": []}
BODY: Message = {"type": "http.response.body", "body": b"{}"}


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    state = scope.setdefault("state", {})
    state["user_id"] = "560972b0-a68d-4bc9-b49f-9975d64c1093"
    state["client_id"] = "userservice-frontend"
    await send(START)
    await send(BODY)


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


async def _send(message: Message) -> None:
    return None


def _scope() -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": "/users/me",
        "raw_path": b"/users/me",
        "root_path": "",
        "query_string": b"",
        "headers": HEADERS,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8443),
        "scheme": "https",
    }


def _per_request(app: Any) -> float:
    async def run() -> float:
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await app(_scope(), _receive, _send)
        return time.perf_counter() - start

    # The least of a few rounds: other processes on the machine only add time.
    return min(asyncio.run(run()) for _ in range(ROUNDS)) / REQUESTS * 1e6


def _configure(log_format: str, level: str, sink: TextIO) -> None:
    config = log_config(level, log_format)
    logging.config.dictConfig(config)
    for name in config["loggers"]:
        for handler in logging.getLogger(name).handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(sink)


def _per_line(format_line: Callable[[logging.LogRecord], str]) -> float:
    record = logging.makeLogRecord(
        {
            "name": "userservice.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": '%s "%s %s HTTP/%s" %d %.1fms %s',
            "args": ("127.0.0.1", "GET", "/users/me", "1.1", 200, 1.25, "e3426c1400000001"),
            "request_id": "e3426c1400000001",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "parent_id": "00f067aa0ba902b7",
            "fields": {
                "method": "GET",
                "route": "/users/me",
                "path": "/users/me",
                "status": 200,
                "duration_ms": 1.25,
                "client": "127.0.0.1",
                "client_id": "userservice-frontend",
                "user_id": "560972b0-a68d-4bc9-b49f-9975d64c1093",
                "user_agent": "python-httpx/0.28.1",
            },
        }
    )
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(LINES):
            format_line(record)
        best = min(best, time.perf_counter() - start)
    return best / LINES * 1e6


def main() -> None:
    bare = _per_request(_answer)
    logged = RequestLogMiddleware(_answer, metrics=NoMetrics())
    rows = [("app alone", bare)]
    for name, log_format, level in (
        ("middleware, access log off", "text", "warning"),
        ("middleware + text line", "text", "info"),
        ("middleware + JSON line", "json", "info"),
    ):
        with open(os.devnull, "w") as sink:
            _configure(log_format, level, sink)
            rows.append((name, _per_request(logged) - bare))
    rows.append(("JsonFormatter.format alone", _per_line(JsonFormatter().format)))
    for name, micros in rows:
        print(f"{name:32} {micros:7.2f} µs")


if __name__ == "__main__":
    main()
