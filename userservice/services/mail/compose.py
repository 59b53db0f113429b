"""A mail kind's templates rendered into one whole RFC 5322 message, in the
recipient's language, once, when it is queued."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, Template

from userservice.i18n import DEFAULT_LOCALE, LOCALES, Catalogs, jinja_environment, match_locale
from userservice.records import OutgoingMail, QueuedMail

TEMPLATE_DIR = Path(__file__).parent / "templates"
# A kind names two template files: nothing that could walk out of the folder.
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")


class MailComposer:
    """One Jinja2 environment per language, built once per application."""

    def __init__(
        self,
        catalogs: Catalogs,
        *,
        app_name: str,
        mail_from: str,
        template_dirs: Sequence[Path] = (TEMPLATE_DIR,),
    ) -> None:
        loader = FileSystemLoader(list(template_dirs))
        self._environments: dict[str, Environment] = {
            locale: jinja_environment(loader, catalogs, locale) for locale in LOCALES
        }
        self.app_name = app_name
        self.mail_from = mail_from
        # Message-IDs under the sender's own domain (RFC 5322 §3.6.4: unique; the
        # right-hand side names the host that made it).
        self._id_domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"

    def compose(self, mail: OutgoingMail, now: dt.datetime) -> QueuedMail:
        if _KIND.fullmatch(mail.kind) is None:
            raise ValueError(f"not a mail kind: {mail.kind!r}")
        locale = match_locale(mail.locale) or DEFAULT_LOCALE
        environment = self._environments[locale]
        # The composer's app_name wins: a value cannot rename the sender.
        values = {**mail.values, "app_name": self.app_name}
        text_template = environment.get_template(f"{mail.kind}.txt")
        text = text_template.render(values).strip() + "\n"
        html = environment.get_template(f"{mail.kind}.html").render(values).strip() + "\n"
        message_id = make_msgid(domain=self._id_domain)
        # An internationalized address can only travel as SMTPUTF8 (RFC 6531).
        message = EmailMessage(policy=policy.SMTP if mail.to.isascii() else policy.SMTPUTF8)
        message["From"] = self.mail_from
        message["To"] = mail.to
        message["Subject"] = subject(text_template, values)
        message["Date"] = format_datetime(now.astimezone(dt.UTC), usegmt=True)
        message["Message-ID"] = message_id
        # RFC 3834: no auto-reply or vacation notice should answer this mail.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        # After the parts: making the message multipart moves Content-* headers
        # into its first part (RFC 3282 names the whole message's language).
        message["Content-Language"] = locale
        return QueuedMail(
            message_id=message_id,
            recipient=mail.to,
            kind=mail.kind,
            content=message.as_string(),
            user_id=mail.user_id,
            created_at=now,
        )


def subject(template: Template, values: dict[str, str]) -> str:
    """The template's subject block on one line: a line break in a header would
    start a header of its own."""
    context = template.new_context(values)
    rendered = "".join(template.blocks["subject"](context))
    return " ".join(rendered.split())
