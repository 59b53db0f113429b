"""Structured logs: the request context every line of a request carries, and the
one-JSON-object-per-line formatter.

No HTTP framework here: the request middleware (api/request_log.py) fills the
context, this module only reads it.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson

# W3C Trace Context §3.2: version 00 exactly, lower-case hex, ids not all zeros.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
# A request id from a client or proxy is kept only when it cannot carry anything
# but an id: no space, quote, CR/LF or other byte that could forge a log field.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    trace_id: str | None = None
    parent_id: str | None = None


# Per request through contextvars: each ASGI request runs in its own task, so a
# value set there is seen by every log call the request makes and by nothing else
# (background tasks such as the mail sender start with none).
current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent id) of a valid W3C `traceparent`, else None (ignored)."""
    if not value or len(value) != 55:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, parent_id = match[1], value[36:52]
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id


def well_formed_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


class RequestIds:
    """Request ids need to be unique, not secret: a random prefix per process and a
    counter (a syscall for fresh randomness on every request is waste)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._next = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._next):08x}"


class RequestContextFilter(logging.Filter):
    """On the handlers: stamps each record with the id (and trace) of the request
    that emitted it, whichever logger it came from."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_request.get()
        if context is not None and not hasattr(record, "request_id"):
            record.request_id = context.request_id
            if context.trace_id is not None:
                record.trace_id = context.trace_id
                record.parent_id = context.parent_id
        return True


# A record may carry its JSON message under this name: a short one where the text
# message only repeats its fields for a human (the access record's request line).
BRIEF = "brief"


class UtcClock:
    """A record's time as `2026-12-03T21:02:43.017Z`, the one timestamp format of
    both log formats. The formatted second is kept: strftime once a second rather
    than on every line (the access line runs on every request)."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        kept, stamp = self._second
        if second != kept:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, stamp)
        return f"{stamp}.{int(record.msecs):03d}Z"


# A record's own attributes; anything else on it came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
    "fields",
    BRIEF,
}
_CONTEXT = ("request_id", "trace_id", "parent_id")
# The standard library's encoder: every line as ASCII (a log stream's encoding
# is not ours to know), and whatever orjson refuses.
_ascii_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode_line(data: dict[str, Any]) -> str:
    """One JSON object. orjson first: the access record runs on every request, and
    it encodes one in well under the standard library's 5 µs; a line that is not
    plain printable ASCII (or holds what orjson cannot encode) goes through json
    instead, so every line stays ASCII with the same escapes either way."""
    try:
        line = orjson.dumps(data, default=str, option=_PASSTHROUGH).decode()
    except orjson.JSONEncodeError:
        return _ascii_encode(data)
    # DEL too: orjson leaves it raw, json escapes it like the other control characters.
    return line if line.isascii() and "\x7f" not in line else _ascii_encode(data)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, the request
    context, and the record's structured fields (`extra={"fields": {...}}` or plain
    extras) as keys of their own. json.dumps escapes CR/LF, quotes and control
    characters, so no value can end the line or the object early (O6)."""

    def __init__(self) -> None:
        super().__init__()
        self._time = UtcClock()

    def format(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        data: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": attributes.get(BRIEF) or record.getMessage(),
        }
        fields = attributes.get("fields")
        if isinstance(fields, dict):
            # A structured record says what it carries: no need to look further
            # than its fields and the request context.
            for key in _CONTEXT:
                if key in attributes:
                    data[key] = attributes[key]
            for key, value in fields.items():
                if value is not None:
                    data.setdefault(key, value)
        else:
            for key, value in attributes.items():
                if key not in _STANDARD and key not in data:
                    data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return encode_line(data)
