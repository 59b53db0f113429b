"""`GET /metrics` on the service's own port, for a Prometheus that can reach only
that port: answered only to the metrics token (O1). The usual place is the
metrics port (observability/exposition.py), which never faces clients."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from userservice.api.problems import problem
from userservice.observability.prometheus import PrometheusMetrics
from userservice.wiring import ServicesDep

router = APIRouter()

_SCHEME = b"bearer "


def _presented(request: Request) -> bytes | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    raw = header.encode("latin-1", "replace")
    if raw[: len(_SCHEME)].lower() != _SCHEME:
        return None
    return raw[len(_SCHEME) :].strip(b" ")


# Not in the OpenAPI document: an operator's endpoint, not part of the API.
# A plain `def`: with a metrics token and no metrics port, a scrape reads the
# outbox from the database, which must not block the event loop.
@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, svc: ServicesDep) -> Response:
    token = svc.settings.metrics_token
    if token is None or not isinstance(svc.metrics, PrometheusMetrics):
        # The same answer as any unknown path: nothing tells metrics exist here.
        raise HTTPException(404)
    presented = _presented(request)
    expected = token.get_secret_value().encode()
    # Constant time: no timing tells how much of a guessed token was right.
    if presented is None or not hmac.compare_digest(presented, expected):
        return problem(
            401,
            "metrics_token_required",
            "Present the metrics token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = svc.metrics.render()
    return Response(body, media_type=content_type)
