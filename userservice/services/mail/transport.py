"""Where a queued mail goes: the service's log (console:, the default) or an SMTP
server (smtp:// with STARTTLS, smtps:// with implicit TLS), chosen once from
`mail_url`. A transport says how an attempt ended; the sender decides what next."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Protocol, cast

import anyio

from userservice.records import ClaimedMail
from userservice.security.smtp_url import SmtpServer, smtp_server

# The console transport's own output: the one log that may show a mail's content.
console_log = logging.getLogger("userservice.mail")
SMTP_TIMEOUT_SECONDS = 20.0


class MailRefused(Exception):
    """The server refused this message for good (a 5xx reply to its recipient or its
    content): trying again cannot help."""


class MailNotSent(Exception):
    """This attempt failed (no connection, a timeout, a 4xx reply, a TLS or login
    problem): the message is tried again later."""


class Transport(Protocol):
    async def send(self, mail: ClaimedMail) -> None:
        """Deliver, or raise MailRefused / MailNotSent."""
        ...


class ConsoleTransport:
    """The default with no mail server: the mail, its link included, goes to the
    log, so the first run can follow a verification link."""

    async def send(self, mail: ClaimedMail) -> None:
        console_log.info("mail %s to %s\n%s", mail.kind, mail.recipient, readable(mail.content))


def readable(content: str) -> str:
    """The headers and the decoded plain-text part: the transfer encoding of a
    Chinese mail (base64) would hide its link from whoever reads the log."""
    parsed = message_from_string(content, policy=policy.default)
    headers = "\n".join(f"{name}: {value}" for name, value in parsed.items())
    text = parsed.get_body(("plain",))
    body = cast(EmailMessage, text).get_content() if text is not None else ""
    return f"{headers}\n\n{body}"


class SmtpTransport:
    """One connection per message, in a worker thread (smtplib blocks). The
    server's certificate is verified against the system's trust store (L15)."""

    def __init__(
        self,
        server: SmtpServer,
        envelope_from: str,
        *,
        tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        timeout: float = SMTP_TIMEOUT_SECONDS,
    ) -> None:
        self.server = server
        self.envelope_from = envelope_from
        self._tls_context = tls_context
        self._timeout = timeout

    async def send(self, mail: ClaimedMail) -> None:
        # The sender awaits each delivery before the next: one connection at a time.
        await anyio.to_thread.run_sync(self._send, mail)

    def _send(self, mail: ClaimedMail) -> None:
        try:
            smtp = self._connect()
            try:
                self._transfer(smtp, mail)
            finally:
                _close(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _refusal(code, reason) from None
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            # A sender refusal is the configuration's fault, not this message's:
            # kept for a retry once mail_from is fixed, even on 5xx.
            permanent = isinstance(exc, smtplib.SMTPDataError)
            raise _refusal(exc.smtp_code, exc.smtp_error, permanent=permanent) from None
        except smtplib.SMTPResponseException as exc:
            raise MailNotSent(_reply(exc.smtp_code, exc.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused connections, timeouts and certificate failures.
            raise MailNotSent(type(exc).__name__) from None

    def _transfer(self, smtp: smtplib.SMTP, mail: ClaimedMail) -> None:
        if self.server.username is not None:
            smtp.login(self.server.username, self.server.password or "")
        # An internationalized address or content needs the server's SMTPUTF8.
        utf8 = not (mail.content.isascii() and mail.recipient.isascii())
        try:
            smtp.sendmail(
                self.envelope_from,
                [mail.recipient],
                mail.content.encode(),
                mail_options=["SMTPUTF8"] if utf8 else [],
            )
        except smtplib.SMTPNotSupportedError:
            # This server cannot carry the address (RFC 6531 §3.4): no later attempt
            # to it can succeed.
            raise MailRefused(
                "the mail server does not support SMTPUTF8, which this recipient's address needs"
            ) from None

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.implicit_tls:
            return smtplib.SMTP_SSL(
                server.host, server.port, timeout=self._timeout, context=self._tls_context()
            )
        smtp = smtplib.SMTP(server.host, server.port, timeout=self._timeout)
        try:
            if server.starttls:
                # starttls() refuses when the server does not offer it: never a
                # silent fall back to clear text.
                smtp.starttls(context=self._tls_context())
        except BaseException:
            smtp.close()
            raise
        return smtp


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT, then close. Once DATA was accepted the message is the server's (RFC 5321
    §4.1.1.4): an odd or missing answer to QUIT must not make it a failed attempt,
    sent again at the next one."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _reply(code: int, reason: bytes | str) -> str:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
    return f"{code} {' '.join(text.split())}"


def _refusal(code: int, reason: bytes | str, *, permanent: bool = True) -> Exception:
    if permanent and 500 <= code < 600:
        return MailRefused(_reply(code, reason))
    return MailNotSent(_reply(code, reason))


def transport_for(mail_url: str, mail_from: str) -> Transport:
    """The transport `mail_url` names; ValueError for a URL it cannot use."""
    if mail_url == "console:":
        return ConsoleTransport()
    return SmtpTransport(smtp_server(mail_url), parseaddr(mail_from)[1])
