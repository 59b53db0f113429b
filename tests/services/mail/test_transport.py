"""The transports against a real SMTP server on loopback: TLS that is verified and
never silently dropped, a login, a refusal told apart from a failed attempt, and
the console transport's readable log."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.cli import assert_one_line_error, run_cli
from tests.support.mail import MAIL_FROM, composer, notice
from tests.support.server import free_port
from tests.support.smtp import Inbox, Tls, smtp_server
from userservice.records import ClaimedMail, OutgoingMail
from userservice.security.smtp_url import SmtpServer
from userservice.security.smtp_url import smtp_server as parse_smtp_url
from userservice.services.mail.transport import (
    ConsoleTransport,
    MailNotSent,
    MailRefused,
    SmtpTransport,
    transport_for,
)
from userservice.settings import Settings

LINK = "https://testserver/verify-email?token=s3cret-t0ken"
ENVELOPE_FROM = "no-reply@acme.test"


def claimed(mail: OutgoingMail | None = None) -> ClaimedMail:
    queued = composer().compose(mail or notice(link=LINK), dt.datetime.now(dt.UTC))
    return ClaimedMail(1, queued.message_id, queued.recipient, queued.kind, queued.content, 1)


def send(url: str, mail: ClaimedMail, context: Callable[[], ssl.SSLContext] | None = None) -> None:
    options = {"tls_context": context} if context is not None else {}
    transport = SmtpTransport(parse_smtp_url(url), ENVELOPE_FROM, timeout=5, **options)
    asyncio.run(transport.send(mail))


@pytest.fixture(scope="module")
def tls() -> Tls:
    return Tls()


def test_starttls_with_a_login_delivers_the_message(tls: Tls) -> None:
    """L15: STARTTLS on smtp://, the certificate verified, then AUTH."""
    mail = claimed()
    with smtp_server(tls=tls, login=("mailer", "p@ss word")) as server:
        send(server.url(login="mailer:p%40ss%20word@"), mail, tls.client_context)
        [received] = server.inbox.wait_for(1)
    assert received.envelope_from == ENVELOPE_FROM
    assert received.recipients == ["bob@example.com"]
    assert received.message["Message-ID"] == mail.message_id
    assert received.link("/verify-email") == LINK
    assert LINK in received.html


def test_implicit_tls_delivers_the_message(tls: Tls) -> None:
    with smtp_server(tls=tls, implicit_tls=True) as server:
        send(server.url(scheme="smtps"), claimed(), tls.client_context)
        assert len(server.inbox.wait_for(1)) == 1


def test_a_certificate_from_an_unknown_authority_is_refused(tls: Tls) -> None:
    """L15: a relay impersonated on the network gets no reset link."""
    with smtp_server(tls=tls) as server:
        with pytest.raises(MailNotSent, match="SSLCertVerificationError"):
            send(server.url(), claimed())  # the system's trust store only
        assert server.inbox.received == []


def test_a_server_without_starttls_gets_nothing_in_clear_text() -> None:
    """L15: a missing STARTTLS offer (as an attacker stripping it would leave) stops
    the attempt; it never falls back to plain SMTP."""
    with smtp_server() as server:
        with pytest.raises(MailNotSent, match="SMTPNotSupportedError"):
            send(server.url(), claimed())
        assert server.inbox.received == []


def test_plain_smtp_to_a_loopback_relay_when_asked() -> None:
    with smtp_server() as server:
        send(server.url(query="?tls=none"), claimed())
        assert len(server.inbox.wait_for(1)) == 1


def test_a_wrong_login_is_a_failed_attempt_not_a_refusal(tls: Tls) -> None:
    """The server refusing our credentials says nothing about the message: it is
    kept and tried again once the setting is fixed."""
    with smtp_server(tls=tls, login=("mailer", "right")) as server:
        with pytest.raises(MailNotSent, match="535") as failed:
            send(server.url(login="mailer:wr0ng-pw@"), claimed(), tls.client_context)
        assert server.inbox.received == []
    assert "wr0ng-pw" not in str(failed.value)  # L18: the stored error and its log line


def test_a_5xx_reply_to_the_recipient_is_a_refusal() -> None:
    refusing = Inbox(refuse={"bob@example.com"})
    with smtp_server(inbox=refusing) as server, pytest.raises(MailRefused) as refused:
        send(server.url(query="?tls=none"), claimed())
    assert str(refused.value) == "550 5.1.1 mailbox unavailable"


def test_an_odd_reply_to_quit_after_the_message_was_accepted_is_still_sent() -> None:
    """L12: once the server has accepted the message, a failure to say goodbye
    is no failed attempt: counting it so would send the mail again and again."""
    with smtp_server(inbox=Inbox(quit_reply="421 4.3.0 going down")) as server:
        send(server.url(query="?tls=none"), claimed())
        assert len(server.inbox.wait_for(1)) == 1


def test_a_non_ascii_address_to_a_server_without_smtputf8_is_refused_for_good() -> None:
    """L12: the server cannot carry an internationalized address (RFC 6531): no
    later attempt can help, so the mail fails at once, saying why."""
    mail = claimed(notice("用户@example.com", link=LINK))
    with smtp_server(smtputf8=False) as server, pytest.raises(MailRefused) as refused:
        send(server.url(query="?tls=none"), mail)
    assert "SMTPUTF8" in str(refused.value)
    assert server.inbox.received == []


def test_no_server_is_a_failed_attempt() -> None:
    with pytest.raises(MailNotSent, match="ConnectionRefusedError"):
        send(f"smtp://127.0.0.1:{free_port()}?tls=none", claimed())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.acme.test", SmtpServer("mail.acme.test", 587, False, True, None, None)),
        (
            "smtps://u:p%2F@mail.acme.test",
            SmtpServer("mail.acme.test", 465, True, False, "u", "p/"),
        ),
        ("smtp://127.0.0.1:25?tls=none", SmtpServer("127.0.0.1", 25, False, False, None, None)),
        ("smtp://localhost:2525?tls=none", SmtpServer("localhost", 2525, False, False, None, None)),
        ("smtp://[::1]:25?tls=none", SmtpServer("::1", 25, False, False, None, None)),
    ],
)
def test_mail_urls(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "smtp://mail.acme.test?tls=none",  # L15: clear text over the network
        "smtp://10.0.0.1:25?tls=none",
        "smtps://127.0.0.1?tls=none",
        "smtp://mail.acme.test?tls=maybe",
        "smtp://mail.acme.test?verify=no",
        "http://mail.acme.test",
        "smtp://",
    ],
)
def test_mail_urls_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"smtp|tls"):
        parse_smtp_url(url)


def test_console_is_the_default_and_logs_the_whole_readable_mail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """README's first command works with no mail server: the link is in the log,
    readable even when the text part travels base64-encoded (Chinese)."""
    transport = transport_for("console:", MAIL_FROM)
    assert isinstance(transport, ConsoleTransport)
    mail = claimed(notice(link=LINK, locale="zh-Hans"))
    assert LINK not in mail.content  # base64 in the message itself
    with caplog.at_level(logging.INFO, logger="userservice.mail"):
        asyncio.run(transport.send(mail))
    [record] = caplog.records
    assert record.name == "userservice.mail"
    logged = record.getMessage()
    assert LINK in logged
    assert f"Message-ID: {mail.message_id}" in logged
    assert "To: bob@example.com" in logged
    assert "此邮件由 Acme 自动发送" in logged


@pytest.mark.parametrize("url", ["smtp://mail.acme.test?tls=none", "smtp://mail.acme.test?x=1"])
def test_a_mail_url_without_tls_to_another_host_is_refused_at_startup(url: str) -> None:
    """L15: the setting itself is refused, so `serve` stops with one line."""
    with pytest.raises(ValidationError, match="tls"):
        Settings(_env_file=None, mail_url=url)  # type: ignore[call-arg]
    assert Settings(_env_file=None, mail_url="smtp://[::1]:25?tls=none")  # type: ignore[call-arg]


def test_l18_a_refused_mail_url_is_reported_without_its_password(tmp_path: Path) -> None:
    secret_url = "smtp://mailer:hunter2-pw@mail.acme.test:587?tls=none"
    result = run_cli(tmp_path / "data", "db", "upgrade", USERSERVICE_MAIL_URL=secret_url)
    assert_one_line_error(result, "USERSERVICE_MAIL_URL", "loopback")
    assert "hunter2-pw" not in result.stderr + result.stdout
