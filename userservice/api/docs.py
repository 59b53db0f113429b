"""Swagger UI served from our own files: no CDN (closed networks, CSP 'self')."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>userservice API</title>
<link rel="icon" type="image/png" href="/static/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/docs/oauth2-redirect")
async def oauth2_redirect() -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><body>'
        '<script src="/static/swagger-ui/oauth2-redirect.js"></script></body></html>'
    )
