"""The notices of second-factor changes (M2, M3, M8) as delivered over SMTP to a
real server (aiosmtpd), in English and Simplified Chinese: what happened, when,
from which address, and the password-reset page of the configured public URL for
whoever did not make the change (L3)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.support.accounts import register
from tests.support.smtp import Received, smtp_server
from userservice.app import create_app
from userservice.db.models import User
from userservice.settings import Settings
from userservice.wiring import Services, wired

ADA = "ada@example.com"
IP = "203.0.113.9"
PUBLIC = "https://id.acme.test"
RESET_PAGE = f"{PUBLIC}/forgot-password"
KINDS = (
    "factor_added",
    "recovery_code_used",
    "recovery_codes_renewed",
    "factor_removed",
    "factors_reset",
)
# What each mail must say, in each language (a phrase of its own sentence).
SAYS = {
    "en": {
        "factor_added": ("An authenticator app was added", "was added to your Acme account on"),
        "recovery_code_used": ("A recovery code of your Acme account", "was used on"),
        "recovery_codes_renewed": ("New recovery codes", "The earlier codes no longer work"),
        "factor_removed": ("The authenticator app was removed", "needs only your password"),
        "factors_reset": ("second factors of your Acme account", "An administrator removed"),
    },
    "zh-Hans": {
        "factor_added": ("已添加身份验证器应用", "添加了身份验证器应用"),
        "recovery_code_used": ("恢复码已被使用", "每个恢复码只能使用一次"),
        "recovery_codes_renewed": ("已生成新的恢复码", "之前的恢复码已全部失效"),
        "factor_removed": ("已移除身份验证器应用", "现在登录只需要密码"),
        "factors_reset": ("第二验证因素已被移除", "管理员于"),
    },
}
FROM_ADDRESS = {"en": f"It was done from the address {IP}.", "zh-Hans": f"此操作来自地址 {IP}。"}
# M8: the administrator's reset is not something the owner did, but may have asked for.
NOT_ASKED = {
    "en": "If you did not ask for this, set a new password at once:",
    "zh-Hans": "如果这不是您要求的操作",
}
NOT_YOU = {"en": "If this was not you", "zh-Hans": "如果不是您本人操作"}
SIGNED_OUT = {
    "en": "Every device that was signed in has been signed out.",
    "zh-Hans": "所有已登录的设备均已退出登录。",
}


@pytest.fixture
def delivered(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> Iterator[Callable[[str], dict[str, Received]]]:
    """Runs every factor change of one account asking in `locale`; the mails received."""
    with smtp_server() as server:
        settings = make_settings(
            mail_url=server.url(query="?tls=none"),
            mail_from="Acme Accounts <accounts@acme.test>",
            app_name="Acme",
            issuer=PUBLIC,
        )
        app = create_app(settings)

        def journey(locale: str) -> dict[str, Received]:
            with TestClient(app, base_url="https://testserver") as client:
                services = wired(app)
                ada = verified(client, services)
                # The account's own language (the administrator's reset has no
                # request language of the account's owner).
                set_locale(services, ada, locale)
                root = uuid.UUID(register(client, "root@example.com")["id"])
                factors = services.factors
                secret = factors.start_totp(ada, ip=IP).secret
                codes = factors.confirm_totp(ada, pyotp.TOTP(secret).now(), ip=IP, locale=locale)
                factors.verify(ada, codes[0], ip=IP, locale=locale)
                factors.regenerate_recovery_codes(ada, ip=IP, locale=locale)
                factors.remove_totp(ada, ip=IP, locale=locale)
                secret = factors.start_totp(ada, ip=IP).secret
                factors.confirm_totp(ada, pyotp.TOTP(secret).now(), ip=IP, locale=locale)
                factors.reset(ada, actor_id=root, ip="198.51.100.1")
                # Two sign-ups' verification mails, then the six notices.
                received = server.inbox.wait_for(2 + 6)
            by_kind: dict[str, Received] = {}
            for mail in received:
                kind = kind_of(mail)
                if kind is not None:
                    assert kind not in by_kind or kind == "factor_added", kind
                    by_kind.setdefault(kind, mail)
            return by_kind

        yield journey


def verified(client: TestClient, services: Services) -> uuid.UUID:
    user_id = uuid.UUID(register(client, ADA)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(email_verified=True))
    return user_id


def set_locale(services: Services, user_id: uuid.UUID, locale: str) -> None:
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(locale=locale))


def kind_of(mail: Received) -> str | None:
    subject = str(mail.message["Subject"])
    for says in SAYS.values():
        for kind, (in_subject, _body) in says.items():
            if in_subject in subject:
                return kind
    assert "Verify your email address" in subject, subject
    return None


@pytest.mark.parametrize("locale", ["en", "zh-Hans"])
def test_m3_every_factor_notice_is_delivered_in_the_language(
    delivered: Callable[[str], dict[str, Received]], locale: str
) -> None:
    started = time.gmtime()
    mails = delivered(locale)
    assert set(mails) == set(KINDS)
    for kind in KINDS:
        mail = mails[kind]
        in_subject, in_body = SAYS[locale][kind]
        assert mail.recipients == [ADA]
        assert mail.message["Content-Language"] == locale, kind
        assert in_subject in str(mail.message["Subject"])
        for part in (mail.text, mail.html):
            assert in_body in part, (kind, part)
            # When: the UTC minute of the change.
            assert time.strftime("%Y-%m-%d", started) in part and "UTC" in part
        # What to do when it was not you: the reset page of the public URL (L3).
        assert mail.link("/forgot-password") == RESET_PAGE
        assert f'href="{RESET_PAGE}"' in mail.html
        # From where, but never the administrator's address.
        if kind == "factors_reset":
            assert "198.51.100.1" not in mail.text + mail.html
        else:
            assert FROM_ADDRESS[locale] in mail.text
        reset = kind == "factors_reset"
        assert (NOT_ASKED[locale] in mail.text) is reset and (
            NOT_YOU[locale] in mail.text
        ) is not reset
        if kind == "recovery_code_used":
            # M2: also sent for a code that confirmed an email change (M7), so it
            # names no purpose.
            assert "sign in" not in mail.text + str(mail.message["Subject"])
            assert "登录" not in mail.text + str(mail.message["Subject"])
        signed_out = kind in ("factor_added", "factor_removed", "factors_reset")
        assert (SIGNED_OUT[locale] in mail.text) is signed_out
        # Nothing secret travels: no code, digest or TOTP secret.
        assert "otpauth" not in mail.text and "secret" not in mail.text.lower()
