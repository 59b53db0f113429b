"""Passkeys through the service (services/passkeys.py) with a software
authenticator: the accounts, ceremonies and reads the passkey service tests share."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.factors import events, verified_user
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.db.models import User
from userservice.errors import InvalidPasskey
from userservice.wiring import Services

ADA = "ada@example.com"
BOB = "bob@example.com"
IP = "192.0.2.7"
ORIGIN = "https://testserver"  # tests.support.accounts.ISSUER: the relying party


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


def with_passkey(
    client: TestClient, services: Services, **kind: Any
) -> tuple[uuid.UUID, SoftAuthenticator]:
    """Ada, proven, with a passkey (`kind` as add_passkey takes it): her id and
    the authenticator that holds the passkey."""
    user_id = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, user_id, authenticator, **kind)
    return user_id, authenticator


def passwordless(services: Services, authenticator: SoftAuthenticator, **knobs: Any) -> str:
    return json.dumps(authenticator.get(services.passkeys.sign_in_options(), ORIGIN, **knobs))


def valid_after(services: Services, user_id: uuid.UUID) -> int:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        return int(
            uow.execute(select(User.tokens_valid_after).where(User.id == user_id)).scalar_one()
        )


def login_failures(services: Services, user_id: uuid.UUID) -> list[Any]:
    """The reason of each login.failed event of the account, in order."""
    return [d.get("reason") for e, d in events(services, user_id) if e == "login.failed"]


def refused_by_each_ceremony(services: Services, user_id: uuid.UUID, answer: str) -> None:
    """`answer` is refused (InvalidPasskey, not an error) by passwordless sign-in,
    registration and the second step alike."""
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(answer, ip=IP)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(user_id, answer, "Key", ip=IP, locale="en")
    with pytest.raises(InvalidPasskey):
        services.passkeys.verify_second_factor(user_id, answer, "a" * 43, ip=IP)
