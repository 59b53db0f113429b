"""Renaming and removing passkeys (M9), the last factor kept under the sign-in rule
(M13), and the export, which lists passkeys without their keys."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.factors import events, verified_user
from tests.support.journeys import mails, text_of
from tests.support.passkey_service import (
    ADA,
    BOB,
    IP,
    add_passkey,
    passwordless,
    valid_after,
)
from tests.support.soft_authenticator import SoftAuthenticator, b64url
from userservice.db.models import RecoveryCode, User
from userservice.errors import (
    Conflict,
    NotFound,
)
from userservice.wiring import Services


def test_m9_rename_and_remove_own_passkeys_only(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    add_passkey(services, ada, SoftAuthenticator())
    passkey = services.passkeys.list(ada)[0].id
    services.passkeys.rename(ada, passkey, "Work laptop", ip=IP)
    assert services.passkeys.list(ada)[0].name == "Work laptop"
    with pytest.raises(NotFound):
        services.passkeys.rename(bob, passkey, "Mine", ip=IP)
    with pytest.raises(NotFound):
        services.passkeys.remove(bob, passkey, ip=IP, locale="en")
    with pytest.raises(NotFound):
        services.passkeys.remove(ada, uuid.uuid4(), ip=IP, locale="en")
    with services.accounts.db.unit_of_work() as uow:
        # The account's own language is what its mails speak.
        uow.execute(update(User).where(User.id == ada).values(locale="zh-Hans"))
    before = valid_after(services, ada)
    time.sleep(1.1)  # the mark has whole seconds; registering set it just now
    services.passkeys.remove(ada, passkey, ip=IP, locale="zh-Hans")
    assert services.passkeys.list(ada) == []
    # M2: the last factor gone, its recovery codes go too.
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        assert uow.execute(select(RecoveryCode).where(RecoveryCode.user_id == ada)).first() is None
    assert ("factor.removed", "passkey") in [(e, d.get("kind")) for e, d in events(services, ada)]
    removed = mails(client.app, ADA, "passkey_removed")  # type: ignore[arg-type]
    assert len(removed) == 1 and "通行密钥" in text_of(removed[0])
    # M3: every token and session of the account ends (the revocation mark moves).
    assert valid_after(services, ada) > before


@pytest.mark.parametrize("rule, admin", [("all", False), ("admins", True)])
def test_m13_the_last_factor_stays_under_the_rule(
    client: TestClient, services: Services, rule: str, admin: bool
) -> None:
    ada = verified_user(client, services)
    if admin:
        with services.accounts.db.unit_of_work() as uow:
            uow.execute(update(User).where(User.id == ada).values(is_admin=True))
    add_passkey(services, ada, SoftAuthenticator(), "One")
    add_passkey(services, ada, SoftAuthenticator(), "Two")
    services.mfa_policy.set_required_for(rule, actor_id=None, ip=IP, via="test")
    first, last = (view.id for view in services.passkeys.list(ada))
    services.passkeys.remove(ada, first, ip=IP, locale="en")
    with pytest.raises(Conflict):
        services.passkeys.remove(ada, last, ip=IP, locale="en")
    assert [view.name for view in services.passkeys.list(ada)] == ["Two"]
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        left = uow.execute(select(RecoveryCode).where(RecoveryCode.user_id == ada)).all()
    assert len(left) == 10


def test_m9_the_export_lists_passkeys_without_keys(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator, "Laptop", backup_eligible=True)
    services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
    factors = services.privacy.export(ada)["factors"]
    assert [row["kind"] for row in factors] == ["passkey", "recovery_codes"]
    passkey, codes = factors
    assert set(passkey) == {"kind", "name", "created_at", "last_used_at", "synced"}
    assert (passkey["name"], passkey["synced"]) == ("Laptop", True)
    assert passkey["last_used_at"] is not None
    assert (codes["recovery_codes_left"], codes["recovery_codes_used"]) == (10, 0)
    exported = json.dumps(factors)
    credential = authenticator.credentials[0].id
    assert b64url(credential) not in exported and credential.hex() not in exported
