"""The service as deployed for the end-to-end journeys: real uvicorn over TLS on
127.0.0.1, its mail going through the outbox's sender to a real SMTP server on
loopback (aiosmtpd), and links built from an issuer that names the served port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, select

from tests.support.browser import tls_server
from tests.support.server import free_port
from tests.support.smtp import Received, SmtpServer, smtp_server
from userservice.db.models import User
from userservice.settings import Settings


@dataclass(frozen=True)
class Deployment:
    base: str
    pin: str  # for Chromium (tests/support/browser.py)
    ca: Path  # for HTTP clients
    settings: Settings
    smtp: SmtpServer

    def mail(self, count: int, to: str) -> Received:
        """The latest mail to `to`, once `count` mails in all have arrived."""
        received = self.smtp.inbox.wait_for(count)
        mine = [mail for mail in received if to in mail.recipients]
        assert mine, [mail.recipients for mail in received]
        return mine[-1]

    def link(self, mail: Received, path: str) -> str:
        link = mail.link(path)
        # Links point at the configured public URL, never elsewhere.
        assert link.startswith(self.base + "/"), (link, self.base)
        return link

    def verified(self, email: str) -> bool:
        engine = create_engine(self.settings.resolved_database_url())
        try:
            with engine.connect() as conn:
                query = select(User.email_verified).where(User.email == email)
                return bool(conn.execute(query).scalar_one())
        finally:
            engine.dispose()


@contextmanager
def deployed(database_url: str, directory: Path) -> Iterator[Deployment]:
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    with smtp_server() as smtp:
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            data_dir=directory,
            issuer=base,
            mail_url=smtp.url(query="?tls=none"),
        )
        with tls_server(settings, directory, port) as (served_at, pin):
            assert served_at == base
            yield Deployment(base, pin, directory / "ca.pem", settings, smtp)
