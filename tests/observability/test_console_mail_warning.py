"""O5: mail on the console with JSON logs (production) is said once, at start."""

from __future__ import annotations

import logging

import pytest

from userservice.serve import warn_console_mail
from userservice.settings import Settings


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_o5_console_mail_with_json_logs_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="userservice.mail"):
        warn_console_mail(_settings(mail_url="console:", log_format="json"))
    records = [r for r in caplog.records if r.name == "userservice.mail"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert "links" in message
    assert "USERSERVICE_MAIL_URL" in message


@pytest.mark.parametrize(
    ("mail_url", "log_format"),
    [("console:", "text"), ("smtp://relay.example.com:587", "json")],
)
def test_o5_no_warning_with_text_logs_or_a_mail_server(
    caplog: pytest.LogCaptureFixture, mail_url: str, log_format: str
) -> None:
    with caplog.at_level(logging.DEBUG, logger="userservice.mail"):
        warn_console_mail(_settings(mail_url=mail_url, log_format=log_format))
    assert [r for r in caplog.records if r.name == "userservice.mail"] == []
