"""Jinja2 rendering for the hosted pages: in the page's language, autoescaped,
never cached by browsers."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import FileSystemLoader

from userservice.i18n import LOCALES, Catalogs, Templates
from userservice.web.browser import issue_csrf, safe_next
from userservice.web.locale import page_locale
from userservice.wiring import wired

TEMPLATE_DIR = Path(__file__).parent / "templates"
# Pages carry CSRF tokens and personal data: no shared or browser cache may keep
# them (OWASP ASVS V14.3.2); the back button must not show a signed-out account.
PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Each language by its own name on the switch, so a reader finds theirs whatever
# the page's language.
AUTONYMS = {"en": "English", "zh-Hans": "简体中文"}


def page_templates(catalogs: Catalogs, app_name: str) -> Templates:
    """The hosted pages in every language; create_app builds them once."""
    # autoescape for every template (F7): client names, hints and `next` values are
    # attacker-controlled text.
    return Templates.build(
        FileSystemLoader(TEMPLATE_DIR),
        catalogs,
        app_name=app_name,
        languages=[(locale, AUTONYMS.get(locale, locale)) for locale in LOCALES],
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
    values: dict[str, Any] = dict(context or {})
    cookies = Response()
    if not values.get("csrf_token"):
        # The language switch is a form on every page, error pages included (F8).
        values["csrf_token"] = issue_csrf(cookies, request)
    next_path = values.get("next") or None
    values.setdefault("here", _here(request, next_path, status_code))
    locale = page_locale(request, next_path)
    body = wired(request.app).pages.render(locale, name, values)
    page = HTMLResponse(
        body,
        status_code=status_code,
        headers={**PAGE_HEADERS, "Content-Language": locale, **(headers or {})},
    )
    for earlier in (response, cookies):
        if earlier is not None:
            page.raw_headers.extend((k, v) for k, v in earlier.raw_headers if k == b"set-cookie")
    return page


def _here(request: Request, next_path: str | None, status_code: int) -> str:
    """Where the language switch brings the browser back: this page by GET."""
    if status_code >= 400:
        # An error page repeats nothing of the request it refuses (a crafted link
        # must not get its text onto our page, F7): the switch returns to the path.
        return request.url.path
    if request.method == "GET":
        query = request.url.query
        return request.url.path + ("?" + query if query else "")
    # A form page answering its own POST (a failed sign-in): the form again.
    safe = safe_next(next_path)
    return request.url.path + ("?" + urlencode({"next": safe}) if safe else "")
