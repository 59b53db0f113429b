"""Browser-session and CSRF helpers shared by the hosted pages and /oauth/authorize."""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import Response

from userservice.errors import Forbidden
from userservice.i18n import N_
from userservice.services.devices import LIFETIME_SECONDS
from userservice.services.sessions import BrowserSession, SessionService

# `__Host-`: the browser accepts the cookie only with Secure, Path=/ and no Domain,
# so neither a sibling subdomain nor a plain-HTTP page can plant or overwrite it
# (RFC 6265bis §4.1.3.2; session fixation and cookie tossing).
SESSION_COOKIE = "__Host-session"
# S12: proof of an earlier sign-in on this browser (services/devices.py).
DEVICE_COOKIE = "__Host-device"
CSRF_COOKIE = "__Host-csrf"
# M6: the half-login between a correct password and the second step. It opens no
# page by itself: only the second-factor and enrolment pages read it.
HALF_LOGIN_COOKIE = "__Host-half-login"
CSRF_FIELD = "csrf_token"
MAX_NEXT_LENGTH = 4096
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")


class CsrfRejected(Forbidden):
    """A POST that may have come from another site (F4)."""

    code = "csrf_rejected"


async def current_session(request: Request, sessions: SessionService) -> BrowserSession | None:
    """The signed-in browser user, or None. Timeouts and a disabled or deleted user
    all read as None; the database read never blocks the event loop on PostgreSQL."""
    return await sessions.current(request.cookies.get(SESSION_COOKIE))


def set_session_cookie(response: Response, raw_id: str) -> None:
    # No Max-Age: the cookie ends with the browser; the server enforces the idle
    # and absolute timeouts (F5). SameSite=Lax keeps the cookie on the top-level
    # GET redirect back from a client app to /oauth/authorize.
    response.set_cookie(
        SESSION_COOKIE, raw_id, path="/", secure=True, httponly=True, samesite="lax"
    )


def set_device_cookie(response: Response, value: str) -> None:
    # Outlives the session and sign-out on purpose: it only gives this browser a
    # failure window of its own. HttpOnly: no script may lift it; Lax, like the
    # session, so a sign-in reached from a client app's redirect still sends it.
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=LIFETIME_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def set_half_login_cookie(response: Response, raw_id: str) -> None:
    # M6: Strict, unlike the session: the second step is always reached from our
    # own POST /login, so no other site ever needs to carry it. No Max-Age: the
    # server ends it after settings.half_login_ttl_seconds.
    response.set_cookie(
        HALF_LOGIN_COOKIE, raw_id, path="/", secure=True, httponly=True, samesite="strict"
    )


def clear_half_login_cookie(response: Response) -> None:
    response.delete_cookie(
        HALF_LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response) -> None:
    # Browsers drop a __Host- Set-Cookie without Secure, the deletion included.
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")


def safe_next(value: str | None) -> str | None:
    """A same-origin path to return to, or None. Refuses anything a browser could
    resolve to another origin (A8, RFC 9700 §4.11 open redirectors): schemes,
    `//host`, and backslashes, which browsers read as slashes (`/\\evil.com`)."""
    if not value or len(value) > MAX_NEXT_LENGTH:
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def login_url(next_path: str, *, login_hint: str | None = None, force: bool = False) -> str:
    """/login that returns to `next_path` afterwards. `force`: ask for the password
    even when a session exists (OIDC `prompt=login`, `max_age`)."""
    params: list[tuple[str, str]] = []
    if safe_next(next_path):
        params.append(("next", next_path))
    if login_hint:
        params.append(("login_hint", login_hint[:320]))
    if force:
        params.append(("force", "1"))
    return "/login?" + urlencode(params) if params else "/login"


def issue_csrf(response: Response, request: Request | None = None) -> str:
    """Double-submit token: set it as a cookie on `response`, put the returned value
    in a hidden form field. Given `request`, its existing valid token is kept, so
    forms open in several tabs all stay valid."""
    token = request.cookies.get(CSRF_COOKIE, "") if request is not None else ""
    if not _well_formed(token):
        token = secrets.token_urlsafe(32)
    # Strict: the cookie never rides along on a request started by another site.
    response.set_cookie(CSRF_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")
    return token


def check_csrf(request: Request, form_value: str | None) -> None:
    """Raise CsrfRejected (403) unless the POST comes from our own origin and the
    form field matches the cookie (F4; OWASP CSRF cheat sheet: token + Origin)."""
    if not same_origin(request):
        raise CsrfRejected(N_("This form was sent from another site."))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    value = form_value or ""
    if not (_well_formed(cookie) and _well_formed(value)):
        raise CsrfRejected(N_("The form has expired. Reload the page and try again."))
    if not hmac.compare_digest(cookie.encode(), value.encode()):
        raise CsrfRejected(N_("The form has expired. Reload the page and try again."))


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from elsewhere. Browsers send
    Origin on every POST (Fetch §3.1) and Sec-Fetch-Site on modern ones; a missing
    header (old browsers, non-browser clients) leaves the token check to decide."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Under Referrer-Policy: no-referrer (A11) browsers send `Origin: null` even
        # on same-origin form POSTs (Fetch §3.2.5); Sec-Fetch-Site above and the
        # token decide then.
        return True
    theirs = _origin_key(origin)
    return theirs is not None and theirs == _origin_key(
        f"{request.url.scheme}://{request.url.netloc}"
    )


def _origin_key(url: str) -> tuple[str, str, int] | None:
    # Anything unparsable is foreign.
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port


def _well_formed(token: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(token) is not None
