"""A passkey-only account (no authenticator app) and services/factors.py: it counts as
enrolled, it gets recovery codes (M2), and a recovery code passes its second step
(the code-only verify); a code stands in for a factor, never for none; an
administrator's reset removes passkeys too (M8). The passkey is a row inserted
through the ORM (its ceremony is the passkey service's), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from tests.support.accounts import register
from tests.support.journeys import mails
from tests.support.stored_passkeys import add_passkey
from userservice.db.models import AuditEvent, Passkey, User
from userservice.errors import Conflict, InvalidCode
from userservice.services.assurance import ONE_TIME_CODE
from userservice.wiring import Services

ADA = "ada@example.com"
IP = "192.0.2.21"


def _verified_user(client: TestClient, services: Services) -> uuid.UUID:
    user_id = uuid.UUID(register(client, ADA)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.get_one(User, user_id).email_verified = True
    return user_id


def _events(services: Services, name: str) -> list[dict[str, object]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.scalars(
            select(AuditEvent.details).where(AuditEvent.event == name).order_by(AuditEvent.id)
        ).all()
    return [json.loads(row) for row in rows]


def test_m2_without_any_factor_there_are_no_recovery_codes(
    client: TestClient, services: Services
) -> None:
    user_id = _verified_user(client, services)
    with pytest.raises(Conflict):
        services.factors.regenerate_recovery_codes(user_id, ip=IP, locale="en")
    summary = services.factors.summary(user_id)
    assert (summary.enrolled, summary.passkeys, summary.recovery_codes_left) == (False, 0, 0)


def test_m2_a_passkey_only_account_gets_codes_and_signs_in_with_one(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    user_id = _verified_user(client, services)
    add_passkey(services, user_id)
    assert services.factors.summary(user_id).enrolled
    codes = services.factors.regenerate_recovery_codes(user_id, ip=IP, locale="en")
    assert len(codes) == 10
    summary = services.factors.summary(user_id)
    assert (summary.totp, summary.passkeys, summary.recovery_codes_left) == (False, 1, 10)
    # Six digits are no app's code here: refused like any wrong code.
    with pytest.raises(InvalidCode):
        services.factors.verify(user_id, "123456", ip=IP, locale="en")
    assert services.factors.verify(user_id, codes[0], ip=IP, locale="en") == ONE_TIME_CODE
    # Single use (M2), and counted down.
    with pytest.raises(InvalidCode):
        services.factors.verify(user_id, codes[0], ip=IP, locale="en")
    assert services.factors.summary(user_id).recovery_codes_left == 9
    methods = [event["method"] for event in _events(services, "factor.verified")]
    assert methods == ["recovery_code"]
    assert len(mails(app, ADA, kind="recovery_code_used")) == 1


def test_m2_a_code_never_stands_in_for_no_factor(client: TestClient, services: Services) -> None:
    user_id = _verified_user(client, services)
    add_passkey(services, user_id)
    codes = services.factors.regenerate_recovery_codes(user_id, ip=IP, locale="en")
    # The passkey gone by a path that left the codes behind: they sign nobody in.
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(delete(Passkey).where(Passkey.user_id == user_id))
    with pytest.raises(InvalidCode):
        services.factors.verify(user_id, codes[1], ip=IP, locale="en")
    assert services.factors.summary(user_id).recovery_codes_left == 0


def test_m8_an_administrators_reset_removes_the_passkeys_too(
    client: TestClient, services: Services
) -> None:
    user_id = _verified_user(client, services)
    add_passkey(services, user_id)
    add_passkey(services, user_id, synced=True)
    services.factors.regenerate_recovery_codes(user_id, ip=IP, locale="en")
    services.factors.reset(user_id, actor_id=None, ip=IP, via="cli")
    summary = services.factors.summary(user_id)
    assert (summary.enrolled, summary.passkeys, summary.recovery_codes_left) == (False, 0, 0)
    [event] = _events(services, "factors.reset")
    assert (event["passkeys"], event["recovery_codes"], event["app"]) == (2, 10, False)
