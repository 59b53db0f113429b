"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from userservice.api.deps import ServicesDep
from userservice.db import migrate
from userservice.security.jwt import SIGNING_ALGORITHMS

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, schema at head, keys loaded")
async def readyz(request: Request, svc: ServicesDep) -> JSONResponse:
    db = svc.accounts.db
    head = request.app.state.migration_head
    checks: dict[str, str] = {}
    try:
        current = await db.run_lookup(migrate.current_revision)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    ring = svc.authenticator.keys.ring
    have_keys = all(ring.has_signing_key(alg) for alg in SIGNING_ALGORITHMS)
    checks["signing_keys"] = "ok" if have_keys else "missing"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
