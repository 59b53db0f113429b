"""A queued mail is one whole RFC 5322 message: text and HTML parts in the
recipient's language, the headers a mail client and a relay need, nothing that
tracks the reader, and links only under the configured public URL."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from typing import cast

import pytest

from tests.support.accounts import ISSUER
from tests.support.mail import APP_NAME, MAIL_FROM, composer, notice
from userservice.i18n import Catalogs
from userservice.records import OutgoingMail, QueuedMail
from userservice.services.mail.compose import TEMPLATE_DIR
from userservice.services.mail.outbox import public_link

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs.load()


def compose(catalogs: Catalogs, mail: OutgoingMail) -> tuple[QueuedMail, EmailMessage]:
    queued = composer(catalogs).compose(mail, NOW)
    parsed = cast(EmailMessage, message_from_string(queued.content, policy=policy.default))
    return queued, parsed


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None
    return cast(EmailMessage, body).get_content()


def test_a_mail_has_text_and_html_parts_and_its_headers(catalogs: Catalogs) -> None:
    link = f"{ISSUER}/verify-email?token=abc"
    queued, message = compose(catalogs, notice("bob@example.com", link=link))
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "bob@example.com"
    assert message["Subject"] == f"Notice from {APP_NAME}: your account"
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"] == queued.message_id
    assert re.fullmatch(r"<[^<>@\s]+@acme\.test>", queued.message_id)
    assert message["Content-Language"] == "en"
    assert message["Auto-Submitted"] == "auto-generated"
    text, html = part(message, "plain"), part(message, "html")
    assert f"open {link}" in text
    assert f'<a href="{link}"' in html
    assert f"sent automatically by {APP_NAME}" in text
    assert '<html lang="en">' in html
    assert f"<title>Notice from {APP_NAME}: your account</title>" in html
    assert (queued.recipient, queued.kind, queued.created_at) == ("bob@example.com", "notice", NOW)


def test_each_mail_gets_its_own_message_id(catalogs: Catalogs) -> None:
    ids = {composer(catalogs).compose(notice(), NOW).message_id for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("asked", ["zh-Hans", "zh-CN", "zh"])
def test_a_mail_speaks_the_recipients_language(catalogs: Catalogs, asked: str) -> None:
    _queued, message = compose(catalogs, notice(locale=asked))
    assert message["Content-Language"] == "zh-Hans"
    assert "此邮件由 Acme 自动发送" in part(message, "plain")
    html = part(message, "html")
    assert '<html lang="zh-Hans">' in html
    assert "如果按钮无法使用" in html


@pytest.mark.parametrize("asked", ["fr", "", "zh-TW", "not a tag!"])
def test_an_unsupported_language_gets_the_default(catalogs: Catalogs, asked: str) -> None:
    _queued, message = compose(catalogs, notice(locale=asked))
    assert message["Content-Language"] == "en"


def test_values_are_escaped_in_html_and_kept_as_written_in_text(catalogs: Catalogs) -> None:
    """L14: a display name is text in both parts, never markup."""
    _queued, message = compose(catalogs, notice(name="<img src=https://evil.test/x>&co"))
    assert "Hello <img src=https://evil.test/x>&co," in part(message, "plain")
    html = part(message, "html")
    assert "&lt;img src=https://evil.test/x&gt;&amp;co" in html
    assert "<img" not in html


def test_a_value_cannot_add_a_header_or_rename_the_sender(catalogs: Catalogs) -> None:
    """L14: the subject is one line whatever a value holds, and app_name is the
    configured one."""
    _queued, message = compose(
        catalogs, notice(topic="hi\r\nBcc: victim@example.com\nX-Evil: 1", app_name="Bank")
    )
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == f"Notice from {APP_NAME}: hi Bcc: victim@example.com X-Evil: 1"
    assert "Bank" not in message.as_string()


@pytest.mark.parametrize("kind", ["../notice", "_layout", "Notice", "notice.txt", ""])
def test_a_kind_names_templates_only(catalogs: Catalogs, kind: str) -> None:
    with pytest.raises(ValueError, match="not a mail kind"):
        composer(catalogs).compose(OutgoingMail(kind, "bob@example.com", "en", {}), NOW)


def test_an_internationalized_address_is_kept(catalogs: Catalogs) -> None:
    _queued, message = compose(catalogs, notice("用户@例子.测试"))
    assert parseaddr(message["To"])[1] == "用户@例子.测试"


def test_the_layouts_load_nothing_remote_and_track_nothing() -> None:
    """L17: no remote images, fonts, scripts or styles, nothing a mail client fetches
    when the mail is opened; no link but the ones a kind passes in."""
    for path in sorted(TEMPLATE_DIR.glob("_*")):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"<img|<script|<link|<iframe|url\(|@import|src=", source), path
        assert not re.search(r"https?://", source), path


def test_links_are_built_under_the_configured_public_url() -> None:
    """L13: never from a request's Host header."""
    issuer = "https://id.acme.test/base/"
    assert (
        public_link(issuer, "/reset-password", token="a b/c")
        == "https://id.acme.test/base/reset-password?token=a+b%2Fc"
    )
    assert public_link(issuer, "/login") == "https://id.acme.test/base/login"
    for bad in ("//evil.test/x", "https://evil.test/", "reset-password"):
        with pytest.raises(ValueError, match="not a path"):
            public_link(issuer, bad)
