"""Passkeys through the service (services/passkeys.py) with a software
authenticator: the accounts, ceremonies and reads the passkey service tests share."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.accounts import register
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.db.models import AuditEvent, User
from userservice.wiring import Services

ADA = "ada@example.com"
BOB = "bob@example.com"
IP = "192.0.2.7"
ORIGIN = "https://testserver"  # tests.support.accounts.ISSUER: the relying party


def verified_user(client: TestClient, services: Services, email: str = ADA) -> uuid.UUID:
    user_id = uuid.UUID(register(client, email)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(email_verified=True))
    return user_id


def add_passkey(
    services: Services,
    user_id: uuid.UUID,
    authenticator: SoftAuthenticator,
    name: str = "Laptop",
    **kind: Any,
) -> list[str] | None:
    options = services.passkeys.registration_options(user_id)
    answer = authenticator.create(options, ORIGIN, **kind)
    added = services.passkeys.register(user_id, json.dumps(answer), name, ip=IP, locale="en")
    return added.recovery_codes


def passwordless(services: Services, authenticator: SoftAuthenticator, **knobs: Any) -> str:
    return json.dumps(authenticator.get(services.passkeys.sign_in_options(), ORIGIN, **knobs))


def valid_after(services: Services, user_id: uuid.UUID) -> int:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        return int(
            uow.execute(select(User.tokens_valid_after).where(User.id == user_id)).scalar_one()
        )


def events(services: Services, user_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.event, AuditEvent.details)
            .where(AuditEvent.user_id == user_id)
            .order_by(AuditEvent.id)
        ).all()
    return [(row[0], json.loads(row[1] or "{}")) for row in rows]
