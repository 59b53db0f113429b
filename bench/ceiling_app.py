"""The ceiling: a bare FastAPI app with one `async def` route returning a small JSON
object, served by the same uvicorn with the same worker count as the service."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
