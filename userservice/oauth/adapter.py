"""Authlib's AuthorizationServer on Starlette requests, for the authorization
endpoint (the token endpoint is our own, oauth/token_endpoint.py).

Authlib ships Flask and Django integrations only. Its server is synchronous, so
we take a snapshot of the request on the event loop (method, URL, headers, and
query + form as multi-dicts) and hand that to Authlib in a worker thread.
Multi-dicts keep every value: RFC 6749 §3.1/§3.2 forbid repeating a parameter,
and Authlib's `validate_no_multiple_request_parameter` needs to see repeats.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from userservice.oauth.errors import cleaned

MAX_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"


class MultiDict(dict[str, str]):
    """First value per key as the dict; every value kept in `lists`."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self.lists.setdefault(key, []).append(value)
            self.setdefault(key, value)

    def getlist(self, key: str) -> list[str]:
        return list(self.lists.get(key, []))

    def repeated(self) -> list[str]:
        return [key for key, values in self.lists.items() if len(values) > 1]


class MalformedRequest(ValueError):
    """The body could not be read as a form: a 400 invalid_request."""


@dataclass(frozen=True)
class RequestSnapshot:
    method: str
    url: str
    headers: Headers
    query: MultiDict
    form: MultiDict = field(default_factory=MultiDict)

    @property
    def values(self) -> MultiDict:
        """Query and form together, as Authlib's payload sees them."""
        return MultiDict([*_pairs(self.query), *_pairs(self.form)])


def _pairs(values: MultiDict) -> list[tuple[str, str]]:
    return [(key, value) for key, items in values.lists.items() for value in items]


def _parse(text: str) -> MultiDict:
    try:
        return MultiDict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        raise MalformedRequest("too many parameters") from None


async def snapshot(request: Request) -> RequestSnapshot:
    """Read everything Authlib may look at, once, on the event loop."""
    query = _parse(request.url.query)
    form = MultiDict()
    if request.method == "POST":
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        body = await request.body()
        if body and media_type != FORM_TYPE:
            raise MalformedRequest(f"send parameters as {FORM_TYPE}")
        try:
            form = _parse(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedRequest("the body is not UTF-8") from None
    return RequestSnapshot(
        method=request.method,
        url=str(request.url),
        headers=Headers(raw=list(request.headers.raw)),
        query=query,
        form=form,
    )


class SnapshotPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, snap: RequestSnapshot) -> None:
        self._values = snap.values

    @property
    def data(self) -> MultiDict:
        return self._values

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, {k: v[:] for k, v in self._values.lists.items()})


class SnapshotRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, snap: RequestSnapshot) -> None:
        super().__init__(method=snap.method, uri=snap.url, headers=snap.headers)
        self.snapshot = snap
        self.payload = SnapshotPayload(snap)

    @property
    def args(self) -> MultiDict:
        return self.snapshot.query

    @property
    def form(self) -> MultiDict:
        return self.snapshot.form


NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


class RedirectResponse(Response):
    """A 302 whose Location Authlib extensions may rewrite (RFC 9207 adds `iss`),
    through the `location` attribute they know from Werkzeug."""

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    @location.setter
    def location(self, value: str) -> None:
        self.headers["location"] = value


class StarletteAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server with Starlette in and out. Grants, client lookup and code
    storage are supplied by subclasses / registration (userservice.oauth.server)."""

    def create_oauth2_request(self, request: RequestSnapshot | SnapshotRequest) -> SnapshotRequest:
        if isinstance(request, SnapshotRequest):
            return request
        return SnapshotRequest(request)

    def handle_response(
        self, status: int, body: Any, headers: Iterable[tuple[str, str]]
    ) -> Response:
        merged = dict(headers)
        if status != 302:
            # RFC 6749 §5.1/§5.2: token and error responses must not be cached.
            merged.update(NO_STORE)
        if isinstance(body, (dict, list)):
            return JSONResponse(body, status_code=status, headers=merged)
        if status == 302:
            return RedirectResponse(b"", status_code=302, headers=merged)
        return Response(body or b"", status_code=status, headers=merged)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Response:
        # S7: every error Authlib answers with leaves with our fixed description.
        return super().handle_error_response(request, cleaned(error))  # type: ignore[no-any-return]

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        # Authlib's hook for framework signals; audit logging happens in our services.
        return None
