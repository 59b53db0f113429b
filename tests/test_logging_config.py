"""The log configuration `serve` hands to uvicorn: the access log never shows the
secret in a mailed link or a misplaced token (L16)."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from userservice.logging_config import log_config, redacted_path


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
