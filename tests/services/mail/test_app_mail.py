"""The outbox as create_app wires it: the sender runs with the app (started and
stopped by its lifespan), sends through the transport `mail_url` names, and
the console default puts the mail, its link included, in the service's log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER
from tests.support.mail import rows
from tests.support.smtp import Tls, smtp_server
from tests.support.wiring import storage_of
from userservice.app import create_app
from userservice.records import OutgoingMail
from userservice.settings import Settings
from userservice.wiring import Services, wired

LINK = f"{ISSUER}/verify-email?token=app-t0ken"
VERIFY = OutgoingMail("verify_email", "ada@example.com", "en", {"link": LINK})


def queue(services: Services, mail: OutgoingMail) -> str:
    with services.accounts.db.unit_of_work() as uow:
        return services.mail.queue(uow, mail)


def test_the_app_sends_over_smtp_with_starttls_and_a_login(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L15 as deployed: `smtp://user:password@host:port` is STARTTLS, verified against
    the system's trust store (here, the test CA put there), then AUTH."""
    tls = Tls()
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.write_ca(tmp_path / "ca.pem")))
    with smtp_server(tls=tls, login=("mailer", "pw")) as server:
        settings = make_settings(
            mail_url=server.url(login="mailer:pw@"),
            mail_from="Acme Accounts <accounts@acme.test>",
            app_name="Acme",
            issuer="https://id.acme.test",
        )
        app = create_app(settings)
        link = wired(app).mail.link("/verify-email", token="app-t0ken")
        assert link == "https://id.acme.test/verify-email?token=app-t0ken"  # L13
        with TestClient(app, base_url="https://testserver"):
            mail = OutgoingMail("verify_email", "ada@example.com", "en", {"link": link})
            message_id = queue(wired(app), mail)
            [received] = server.inbox.wait_for(1)
            started = time.monotonic()
        assert time.monotonic() - started < 5  # the sender stops with the app (L19)
    message = received.message
    assert message["Message-ID"] == message_id
    assert message["From"] == "Acme Accounts <accounts@acme.test>"
    assert received.envelope_from == "accounts@acme.test"
    assert message["Subject"] == "Verify your email address for Acme"
    assert received.link("/verify-email") == link
    assert link in received.html
    [row] = rows(storage_of(app))
    assert row.sent_at is not None and row.attempts == 1


def test_the_console_default_logs_the_mail(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """README's first command works with no mail server: the link is in the log."""
    settings = make_settings()
    assert settings.mail_url == "console:"
    app = create_app(settings)
    logged = caplog.at_level(logging.INFO, logger="userservice.mail")
    with logged, TestClient(app, base_url="https://testserver"):
        queue(wired(app), VERIFY)
        deadline = time.monotonic() + 10
        while not rows(storage_of(app))[0].sent_at:
            assert time.monotonic() < deadline, "not sent"
            time.sleep(0.02)
    [record] = [r for r in caplog.records if r.name == "userservice.mail"]
    assert LINK in record.getMessage()
    assert "To: ada@example.com" in record.getMessage()


def test_a_mail_queued_while_no_sender_ran_goes_out_at_start(
    make_settings: Callable[..., Settings],
) -> None:
    """L10: a mail committed while no sender was running (every worker down, or
    queued by a command) is claimed by the next sender that starts."""
    with smtp_server() as server:
        app = create_app(make_settings(mail_url=server.url(query="?tls=none")))
        message_id = queue(wired(app), VERIFY)  # no lifespan yet: no sender
        assert server.inbox.received == []
        with TestClient(app, base_url="https://testserver"):
            [received] = server.inbox.wait_for(1)
    assert received.message["Message-ID"] == message_id
