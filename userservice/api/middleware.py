"""Pure ASGI middleware: security headers, caching, request-size limits.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task per request and never
buffers bodies, which matters on the bearer hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userservice.api.problems import ERROR_FORM, ErrorForm, refusal

MAX_HEADER_BYTES = 32 * 1024
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# Hosted pages: no script but our own file (the WebAuthn script, M9), never inline.
# No form-action: Chrome applies it to the redirect that follows a form POST, which
# would block the consent form's redirect to the client.
PAGES_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


# S9: the only responses a cache may keep are public documents, the same for every
# caller. Everything else (profiles, tokens, client secrets, pages, and every error)
# is no-store, so a route added later is safe without remembering to say so.
CACHEABLE_PATHS = frozenset(
    {
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/oauth/jwks",
        "/openapi.json",
        "/docs",
    }
)
CACHEABLE_PREFIXES = ("/static/",)
NO_STORE = (b"cache-control", b"no-store")
_HIDDEN = frozenset({b"server"})  # G7: no banner
_HIDDEN_AND_CACHING = _HIDDEN | {b"cache-control"}
# Module constants: an Enum member looked up on its class costs a descriptor call,
# and this runs on every request.
_PROBLEM, _OAUTH, _PAGE = ErrorForm.PROBLEM, ErrorForm.OAUTH, ErrorForm.PAGE


class SecurityMiddleware:
    """Adds the request id and the security headers to every response (F6, A11),
    `Cache-Control: no-store` to every response not on the public list (S9),
    refuses oversized bodies (I2) and duplicated query parameters (G4).

    A refusal speaks the language of the endpoint it stops: RFC 6749 §5.2 JSON on
    the OAuth endpoints (C11), a plain answer on the pages people navigate to, and
    problem details elsewhere. Errors raised later in the request (a streamed body
    that turns out too large, a 405) are answered in the same form, which this
    middleware records in the request's state for the exception handlers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_form_body: int,
        form_paths: Iterable[str],
        docs_paths: Iterable[str],
        hsts: bool,
        page_paths: Iterable[str] = (),
        oauth_paths: Iterable[str] = ("/oauth/",),
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_form_body = max_form_body
        self.form_paths = tuple(form_paths)
        self.docs_paths = tuple(docs_paths)
        self.page_paths = tuple(page_paths)
        self.oauth_paths = tuple(oauth_paths)
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The id RequestLogMiddleware (outside this one) chose, so that the header,
        # the log lines and a 500's body all name the same request (H1, O4).
        request_id: str = scope.setdefault("state", {}).get("request_id", "")
        path: str = scope["path"]
        form = _PROBLEM
        csp = DOCS_CSP if path.startswith(self.docs_paths) else API_CSP
        if path.startswith(self.page_paths):
            csp, form = PAGES_CSP, _PAGE
        elif path.startswith(self.oauth_paths):
            form = _OAUTH
        scope["state"][ERROR_FORM] = form
        extra = [
            (b"x-request-id", request_id.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", csp.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if self.hsts:
            extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        hidden = _HIDDEN
        if path not in CACHEABLE_PATHS and not path.startswith(CACHEABLE_PREFIXES):
            # Replaces whatever the route said: outside the public list nothing is
            # cacheable, however a route was written.
            extra.append(NO_STORE)
            hidden = _HIDDEN_AND_CACHING
        # The 500 handler runs in ServerErrorMiddleware, outside this middleware: it
        # adds these headers itself (H1, F6).
        scope["state"]["security_headers"] = extra

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in hidden]
                message["headers"] = headers + extra
            await send(message)

        refused = self._refusal(scope, path)
        if refused is not None:
            await refusal(form, *refused)(scope, receive, send_with_headers)
            return
        limit = self.max_form_body if path.startswith(self.form_paths) else self.max_body
        await self.app(scope, _limited(receive, limit), send_with_headers)

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str, str] | None:
        limit = self.max_form_body if path.startswith(self.form_paths) else self.max_body
        headers = scope.get("headers", [])
        # D6: the server accepts huge headers; refuse them before any parsing or
        # crypto looks at them (our own tokens are under 8 KiB).
        if sum(len(n) + len(v) for n, v in headers) > MAX_HEADER_BYTES:
            return 431, "headers_too_large", "The request headers are too large."
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    return 400, "bad_request", "Invalid Content-Length."
                if int(value) > limit:
                    return 413, "body_too_large", f"The request body exceeds {limit} bytes."
        query = scope.get("query_string", b"")
        if query:
            try:
                pairs = parse_qsl(
                    query.decode("latin-1"), keep_blank_values=True, max_num_fields=100
                )
            except ValueError:
                return 400, "bad_request", "Too many query parameters."
            names = [k for k, _ in pairs]
            if len(names) != len(set(names)):
                return 400, "duplicate_parameter", "A query parameter is repeated."
            if "access_token" in names:
                # C12 (RFC 6750 §2.3, RFC 9700 §4.3.2): tokens in URLs leak into logs.
                return 400, "token_in_query", "Send access tokens in the Authorization header."
        return None


class BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body parsing re-raises it as is instead of
    # turning it into a generic 400 "error parsing the body".
    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


def _limited(receive: Receive, limit: int) -> Receive:
    """Count streamed (chunked) bodies too, where no Content-Length announced them."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return wrapped


class ScopedCORSMiddleware:
    """CORS for the API, never for the pages a person uses (A12).

    /oauth/authorize, the login/consent/logout pages and the account page are
    navigated to by browsers, never fetched by scripts: a CORS answer there would
    only let another origin read a signed-in user's pages."""

    def __init__(self, app: ASGIApp, *, excluded: Iterable[str], origins: list[str]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.excluded = tuple(excluded)
        self.with_cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.excluded):
            await self.with_cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
