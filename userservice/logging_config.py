"""Log configuration handed to uvicorn (and so to every worker process)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

from userservice.observability.logs import JsonFormatter, RequestContextFilter, UtcClock

# Query parameters that carry a secret: mailed single-use links (E8), and tokens or
# codes a client should never put in a URL (C12) but might. The access log keeps
# the parameter's name and drops its value (L16): a log is read by more people
# than the database is.
SECRET_QUERY_NAMES = frozenset(
    {"token", "access_token", "refresh_token", "id_token_hint", "code", "client_secret"}
)
REDACTED = "REDACTED"


def redacted_path(path: str) -> str:
    """`path?query` with the values of secret parameters replaced."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name in SECRET_QUERY_NAMES for name, _ in pairs):
        return path
    kept = [(name, REDACTED if name in SECRET_QUERY_NAMES else value) for name, value in pairs]
    return f"{base}?{urlencode(kept)}"


class RedactQuerySecrets(logging.Filter):
    """On uvicorn's access log, whose record args are (client, method, path with
    query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redacted_path(args[2]), args[3], args[4])
        return True


class UTCFormatter(logging.Formatter):
    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._time = UtcClock()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time(record)


def log_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """uvicorn's dictConfig. `text`: lines for a terminal, as they always were.
    `json`: one JSON object per line from every logger (O4). Either way every
    record emitted while a request runs carries that request's id (and trace)."""
    line = "%(asctime)s %(levelname)s %(name)s %(message)s"
    json_lines = {"()": JsonFormatter}
    formatters: dict[str, Any] = {
        "utc": {"()": UTCFormatter, "fmt": line},
        # The service's own access record (api/request_log.py).
        "request": {"()": UTCFormatter, "fmt": "%(asctime)s %(levelname)s access %(message)s"},
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(asctime)s %(levelname)s access %(client_addr)s "%(request_line)s" '
            "%(status_code)s",
            "use_colors": False,
        },
    }
    if log_format == "json":
        formatters = {"utc": json_lines, "request": json_lines, "access": json_lines}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "filters": {
            "redact_query_secrets": {"()": RedactQuerySecrets},
            "request_context": {"()": RequestContextFilter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "utc",
                "filters": ["request_context"],
                "stream": "ext://sys.stderr",
            },
            "request": {
                "class": "logging.StreamHandler",
                "formatter": "request",
                "filters": ["request_context"],
                "stream": "ext://sys.stdout",
            },
            # uvicorn's own access log, off under `serve` (the service writes one
            # record per request itself), redacted all the same should it be on.
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "filters": ["redact_query_secrets", "request_context"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "userservice": {"handlers": ["default"], "level": level, "propagate": False},
            "userservice.access": {"handlers": ["request"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
        # Every other library's warnings, in the same format rather than bare text.
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
