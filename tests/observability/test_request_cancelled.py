"""A request that ends before any response started because its client went away
(or a shutdown's grace period cut it) is 499, nginx's "client closed request", in
the access record and the metric: not a 500 that would page someone."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from tests.support.log_capture import Captured, captured_logs
from userservice.api.request_log import RequestLogMiddleware
from userservice.observability.metrics import NoMetrics
from userservice.observability.prometheus import PrometheusMetrics

SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/users",
    "root_path": "",
    "query_string": b"",
    "headers": [],
    "client": ("127.0.0.1", 50000),
    "http_version": "1.1",
}


@pytest.fixture
def json_log() -> Iterator[Captured]:
    with captured_logs("json") as log:
        yield log


async def _never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    await anyio.sleep_forever()


async def _reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
    await Request(scope, receive).body()  # the client is gone: ClientDisconnect


async def _fails(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug")


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


async def _nothing(message: Message) -> None:
    return None


def _status(metrics: PrometheusMetrics, status: str) -> float | None:
    return metrics.registry.get_sample_value(
        "userservice_http_request_duration_seconds_count",
        {"method": "POST", "route": "unmatched", "status": status},
    )


def _access_status(log: Captured) -> list[int]:
    return [r["status"] for r in log.records() if r["logger"] == "userservice.access"]


def test_a_cancelled_request_is_499_not_500(json_log: Captured) -> None:
    metrics = PrometheusMetrics()
    middleware = RequestLogMiddleware(_never_answers, metrics=metrics)

    async def main() -> None:
        with anyio.move_on_after(0.05):  # as the graceful shutdown's cut does
            await middleware(dict(SCOPE), _disconnected, _nothing)

    anyio.run(main)
    assert _status(metrics, "499") == 1
    assert _status(metrics, "500") is None
    assert _access_status(json_log) == [499]


def test_a_client_gone_while_its_body_is_read_is_499(json_log: Captured) -> None:
    metrics = PrometheusMetrics()
    middleware = RequestLogMiddleware(_reads_the_body, metrics=metrics)

    async def main() -> None:
        await middleware(dict(SCOPE), _disconnected, _nothing)

    with pytest.raises(ClientDisconnect):
        anyio.run(main)
    assert _status(metrics, "499") == 1
    assert _access_status(json_log) == [499]


def test_a_bug_is_still_500(json_log: Captured) -> None:
    metrics = PrometheusMetrics()
    middleware = RequestLogMiddleware(_fails, metrics=metrics)
    with pytest.raises(RuntimeError):
        anyio.run(middleware, dict(SCOPE), _disconnected, _nothing)
    assert _status(metrics, "500") == 1
    assert _access_status(json_log) == [500]


def test_with_metrics_and_access_log_off_nothing_is_read(json_log: Captured) -> None:
    """Off means off: nothing of the request is read for them (a scope without a
    method would fail the reading of its label)."""
    middleware = RequestLogMiddleware(_fails, metrics=NoMetrics())
    access = logging.getLogger("userservice.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        scope = {key: value for key, value in SCOPE.items() if key != "method"}
        with pytest.raises(RuntimeError):
            anyio.run(middleware, scope, _disconnected, _nothing)
    finally:
        access.setLevel(level)
    assert _access_status(json_log) == []
