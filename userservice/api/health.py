"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from userservice.wiring import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, schema at head, keys loaded; "
    "where throttle counters are kept",
)
async def readyz(svc: ServicesDep) -> JSONResponse:
    checks = await svc.readiness.checks()
    ready = all(v == "ok" for v in checks.values())
    counters = await svc.readiness.counters()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks, "counters": counters},
        status_code=200 if ready else 503,
    )
