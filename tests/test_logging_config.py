"""The log configuration `serve` hands to uvicorn: the access log never shows the
secret in a mailed link or a misplaced token (L16)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator

import pytest

from userservice.logging_config import UTCFormatter, log_config, redacted_path
from userservice.observability.logs import JsonFormatter, parse_traceparent


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    logging.config.dictConfig(log_config("info"))
    logger = logging.getLogger("uvicorn.access")
    stream = io.StringIO()
    (handler,) = logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def _request(path: str) -> None:
    # As uvicorn's HTTP protocol logs each request.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.9:5000", "GET", path, "1.1", 200
    )


def test_l16_mailed_link_tokens_never_reach_the_access_log(access_log: io.StringIO) -> None:
    secret = "hVRxHE3XEXsecretTOKENvalue"
    _request(f"/reset-password?token={secret}")
    _request(f"/verify-email?lang=zh-Hans&token={secret}")
    _request(f"/users/me?access_token={secret}")
    lines = access_log.getvalue().splitlines()
    assert len(lines) == 3
    assert secret not in access_log.getvalue()
    assert '"GET /reset-password?token=REDACTED HTTP/1.1" 200' in lines[0]
    assert "lang=zh-Hans&token=REDACTED" in lines[1]


def test_l16_other_queries_are_logged_as_they_came(access_log: io.StringIO) -> None:
    _request("/users?email=a%40b.example&limit=5")
    _request("/login")
    assert '"GET /users?email=a%40b.example&limit=5 HTTP/1.1"' in access_log.getvalue()
    assert '"GET /login HTTP/1.1"' in access_log.getvalue()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/x?code=abc&state=s", "/x?code=REDACTED&state=s"),
        ("/x?token=", "/x?token=REDACTED"),
        ("/x?tok=1", "/x?tok=1"),
        ("/x", "/x"),
    ],
)
def test_redacted_path(path: str, expected: str) -> None:
    assert redacted_path(path) == expected


# --- JSON lines (O4, O6) ----------------------------------------------------------


def _json_line(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_o4_a_json_line_has_the_utc_time_of_the_text_format_and_the_core_keys() -> None:
    record = logging.makeLogRecord(
        {
            "name": "userservice.x",
            "levelno": 30,
            "levelname": "WARNING",
            "msg": "a %s",
            "args": ("b",),
        }
    )
    record.created, record.msecs = 1796332963.017, 17.0
    assert _json_line(record) == {
        "time": "2026-12-03T21:22:43.017Z",
        "level": "WARNING",
        "logger": "userservice.x",
        "message": "a b",
    }
    text = logging.Formatter.format(UTCFormatter("%(asctime)s"), record)
    assert text == "2026-12-03T21:22:43.017Z"


def test_o6_structured_fields_are_keys_and_cannot_replace_the_core_ones() -> None:
    forged = 'x\r\n{"level":"CRITICAL"}'
    record = logging.makeLogRecord(
        {
            "name": "userservice.audit",
            "levelname": "INFO",
            "msg": "login.failed",
            "fields": {"event": "login.failed", "level": "CRITICAL", "email": forged, "by": None},
        }
    )
    line = _json_line(record)
    assert line["level"] == "INFO" and line["event"] == "login.failed"
    assert line["email"] == forged
    assert "by" not in line and "fields" not in line


def test_an_exception_is_one_field_of_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.makeLogRecord(
            {"name": "x", "levelname": "ERROR", "msg": "failed", "exc_info": sys.exc_info()}
        )
    line = _json_line(record)
    assert isinstance(line["exception"], str) and "ValueError: boom" in line["exception"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", False),
        ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("", False),
        (None, False),
    ],
)
def test_o4_traceparent_is_parsed_strictly(value: str | None, expected: bool) -> None:
    parsed = parse_traceparent(value)
    assert (parsed is not None) is expected
    if parsed:
        assert parsed == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_o4_every_logger_writes_json_lines_when_asked() -> None:
    config = log_config("info", "json")
    assert {f["()"] for f in config["formatters"].values()} == {JsonFormatter}
    for handler in config["handlers"].values():
        assert "request_context" in handler["filters"]
    assert config["root"]["handlers"] == ["default"]
