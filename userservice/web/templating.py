"""Jinja2 rendering for the hosted pages: autoescaped, never cached by browsers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).parent / "templates"
# Pages carry CSRF tokens and personal data: no shared or browser cache may keep
# them (OWASP ASVS V14.3.2); the back button must not show a signed-out account.
PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@cache
def environment() -> Environment:
    # autoescape=True for every template (F7): client names, hints and `next`
    # values are attacker-controlled text.
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        auto_reload=False,
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    response: Response | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page. `response`: an earlier response whose Set-Cookie headers
    (a CSRF cookie from issue_csrf) the new one must carry too."""
    values: dict[str, Any] = {"csrf_token": "", **(context or {})}
    body = environment().get_template(name).render(values)
    page = HTMLResponse(body, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
    if response is not None:
        page.raw_headers.extend((k, v) for k, v in response.raw_headers if k == b"set-cookie")
    return page
