"""A real SMTP server (aiosmtpd) on 127.0.0.1, collecting what it receives, for the
mail tests: plain, STARTTLS or implicit TLS with a throwaway CA (trustme), with a
login, refusing chosen recipients with 550."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.server import free_port

WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        return _part(self.message, "plain")

    @property
    def html(self) -> str:
        return _part(self.message, "html")

    def link(self, path: str) -> str:
        """The one link to `path` in the plain-text part."""
        found = set(re.findall(rf"https?://\S+{re.escape(path)}\S*", self.text))
        assert len(found) == 1, (path, self.text)
        return found.pop()


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return cast(EmailMessage, body).get_content()


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps every message, refuses `refuse` at RCPT, takes
    `delay` seconds to accept each message (a slow server, for a sender to be
    caught mid-batch), and answers QUIT with `quit_reply` instead of 221."""

    refuse: set[str] = field(default_factory=set)
    delay: float = 0.0
    quit_reply: str | None = None
    received: list[Received] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        raw = cast(bytes, envelope.original_content or envelope.content)
        message = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
        item = Received(str(envelope.mail_from), list(envelope.rcpt_tos), message)
        with self._arrived:
            self.received.append(item)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str | object:
        return self.quit_reply if self.quit_reply is not None else MISSING

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        """At least `count` messages, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} mails arrived")
                self._arrived.wait(left)
            return list(self.received)


@dataclass
class Tls:
    """A throwaway CA, and the server's certificate for 127.0.0.1 and localhost."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client (Python's defaults) trusting only this CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox

    def url(self, *, scheme: str = "smtp", login: str = "", query: str = "") -> str:
        return f"{scheme}://{login}{self.host}:{self.port}{query}"


@contextmanager
def smtp_server(
    *,
    inbox: Inbox | None = None,
    port: int | None = None,
    tls: Tls | None = None,
    implicit_tls: bool = False,
    login: tuple[str, str] | None = None,
    smtputf8: bool = True,
) -> Iterator[SmtpServer]:
    """Serve until the block ends. With `tls`: STARTTLS offered and required (or,
    with `implicit_tls`, TLS from the first byte). With `login`: AUTH required.
    Without `smtputf8`: no internationalized address accepted (RFC 6531 not offered).
    The same `inbox` and `port` again bring "the same server" back after a stop."""
    inbox = inbox if inbox is not None else Inbox()
    port = port or free_port()
    options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if tls is not None and implicit_tls:
        options["ssl_context"] = tls.server_context()
    elif tls is not None:
        options |= {"tls_context": tls.server_context(), "require_starttls": True}
    if login is not None:
        options |= {"authenticator": _authenticator(*login), "auth_required": True}
        options["auth_require_tls"] = tls is not None
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


def _authenticator(user: str, password: str) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login == user.encode()
            and data.password == password.encode()
        )
        return AuthResult(success=good, handled=False)

    return check
