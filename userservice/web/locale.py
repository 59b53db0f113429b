"""The language of a hosted page: OIDC ui_locales (OIDC Core §3.1.2.1), then the
language the browser chose on our switch (a cookie), then Accept-Language."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import Response

from userservice.i18n import negotiate

# Not a secret and not an authenticator: a preference. __Host- all the same, so a
# sibling subdomain cannot plant a language on our pages (cookie tossing).
LANGUAGE_COOKIE = "__Host-lang"
LANGUAGE_LIFETIME = 365 * 24 * 3600
# /login?next=/oauth/authorize?…ui_locales=…: the client's wish travels inside `next`.
_NESTING = 2


def page_locale(request: Request, next_path: str | None = None) -> str:
    """The page's locale, always one of LOCALES (F9). `next_path`: where the page
    returns to (a POSTed form's `next`; else the query's)."""
    ui_locales = request.query_params.get("ui_locales") or _nested_ui_locales(
        next_path or request.query_params.get("next")
    )
    return negotiate(
        ui_locales,
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )


def set_language_cookie(response: Response, locale: str) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        locale,
        max_age=LANGUAGE_LIFETIME,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def with_ui_locales(path: str, locale: str) -> str:
    """`path` with every ui_locales it carries (itself or in its `next`) set to
    `locale`: a choice made on our switch must win over the client's earlier wish,
    or the page would come back in the language the user just turned away from."""
    return _rewrite(path, locale, _NESTING)


def _rewrite(path: str, locale: str, depth: int) -> str:
    parts = urlsplit(path)
    if not parts.query or depth == 0:
        return path
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "ui_locales":
            value = locale
        elif name == "next":
            value = _rewrite(value, locale, depth - 1)
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _nested_ui_locales(path: str | None) -> str | None:
    for _ in range(_NESTING):
        if not path or "?" not in path:
            return None
        query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        if query.get("ui_locales"):
            return query["ui_locales"]
        path = query.get("next")
    return None
