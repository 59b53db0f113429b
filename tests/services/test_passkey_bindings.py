"""Passkey challenges bound to where they are answered (services/passkeys.py, M9):
a confirmation on a signed-in page bound to that browser session, whose proof
stands for the code of an address change (M7); a registration during a forced
enrolment bound to that half-login (M8, M13). Software authenticator with real
keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import userservice
from tests.support.accounts import PASSWORD, register
from tests.support.journeys import mails
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.db.models import AuditEvent, User
from userservice.errors import InvalidPasskey, SecondFactorNeeded
from userservice.security import webauthn_challenges
from userservice.services.passkeys import PasskeyProof
from userservice.wiring import Services

ADA = "ada@example.com"
BOB = "bob@example.com"
IP = "192.0.2.7"
ORIGIN = "https://testserver"
SESSION_ID = "a-browser-session-id"


def _verified(client: TestClient, services: Services, email: str = ADA) -> uuid.UUID:
    user_id = uuid.UUID(register(client, email)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(email_verified=True))
    return user_id


def _add(services: Services, user_id: uuid.UUID, soft: SoftAuthenticator) -> None:
    answer = soft.create(services.passkeys.registration_options(user_id), ORIGIN)
    services.passkeys.register(user_id, json.dumps(answer), "Laptop", ip=IP, locale="en")


def _events(services: Services, user_id: uuid.UUID, name: str) -> list[dict[str, Any]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.details)
            .where(AuditEvent.user_id == user_id, AuditEvent.event == name)
            .order_by(AuditEvent.id)
        ).all()
    return [json.loads(row[0] or "{}") for row in rows]


def test_m7_m9_a_confirmation_is_bound_to_its_session_and_account(
    client: TestClient, services: Services
) -> None:
    ada, bob = _verified(client, services), _verified(client, services, BOB)
    soft, bobs = SoftAuthenticator(), SoftAuthenticator()
    _add(services, ada, soft)
    _add(services, bob, bobs)
    passkeys = services.passkeys
    options = json.loads(passkeys.confirmation_options(ada, SESSION_ID))
    assert [c["id"] for c in options["allowCredentials"]] != []
    assert options["userVerification"] == "preferred"
    # Another session's answer, another account's key, a sign-in's challenge: refused.
    other_session = json.dumps(soft.get(options, ORIGIN))
    with pytest.raises(InvalidPasskey):
        passkeys.verify_confirmation(ada, other_session, "another-session", ip=IP)
    foreign = json.dumps(bobs.get(options, ORIGIN, credential=bobs.credentials[0]))
    with pytest.raises(InvalidPasskey):
        passkeys.verify_confirmation(ada, foreign, SESSION_ID, ip=IP)
    second_step = json.loads(passkeys.second_factor_options(ada, SESSION_ID))
    with pytest.raises(InvalidPasskey):
        passkeys.verify_confirmation(
            ada, json.dumps(soft.get(second_step, ORIGIN)), SESSION_ID, ip=IP
        )
    # A confirmation's challenge does not finish a half-login of the same id either.
    fresh = json.loads(passkeys.confirmation_options(ada, SESSION_ID))
    answer = json.dumps(soft.get(fresh, ORIGIN))
    with pytest.raises(InvalidPasskey):
        passkeys.verify_second_factor(ada, answer, SESSION_ID, ip=IP)
    # The right one: a proof of this account, once.
    last = json.loads(passkeys.confirmation_options(ada, SESSION_ID))
    good = json.dumps(soft.get(last, ORIGIN))
    proof = passkeys.verify_confirmation(ada, good, SESSION_ID, ip=IP)
    assert proof == PasskeyProof(ada, "hwk")
    with pytest.raises(InvalidPasskey):
        passkeys.verify_confirmation(ada, good, SESSION_ID, ip=IP)
    assert {"method": "passkey", "during": "confirm"} in _events(services, ada, "factor.verified")
    failed = [(item["during"], item["reason"]) for item in _events(services, ada, "factor.failed")]
    assert failed == [
        ("confirm", "challenge"),
        ("confirm", "unknown_credential"),
        ("confirm", "challenge"),
        ("second_factor", "challenge"),
        ("confirm", "challenge_spent"),
    ]


def test_m7_m9_a_passkey_proof_stands_for_the_code_of_an_address_change(
    client: TestClient, services: Services
) -> None:
    ada, bob = _verified(client, services), _verified(client, services, BOB)
    soft = SoftAuthenticator()
    _add(services, ada, soft)
    change = services.email_change
    with pytest.raises(SecondFactorNeeded):
        change.request(ada, "new@example.com", PASSWORD, ip=IP, locale="en")
    # Another account's proof is no proof for Ada's (M7).
    with pytest.raises(SecondFactorNeeded):
        change.request(
            ada, "new@example.com", PASSWORD, ip=IP, locale="en", passkey=PasskeyProof(bob, "hwk")
        )
    options = json.loads(services.passkeys.confirmation_options(ada, SESSION_ID))
    answer = json.dumps(soft.get(options, ORIGIN))
    proof = services.passkeys.verify_confirmation(ada, answer, SESSION_ID, ip=IP)
    change.request(ada, "new@example.com", PASSWORD, ip=IP, locale="en", passkey=proof)
    assert len(mails(client.app, "new@example.com", "email_change_verify")) == 1  # type: ignore[arg-type]


def test_m8_m13_a_registration_during_a_sign_in_is_bound_to_that_half_login(
    client: TestClient, services: Services
) -> None:
    ada = _verified(client, services)
    passkeys, soft = services.passkeys, SoftAuthenticator()
    half = "a-half-login-id"
    during = passkeys.registration_options(ada, half_login_id=half)
    created = json.dumps(soft.create(during, ORIGIN))
    # Not on the account page's binding, nor another half-login's.
    with pytest.raises(InvalidPasskey):
        passkeys.register(ada, created, "Laptop", ip=IP, locale="en")
    with pytest.raises(InvalidPasskey):
        passkeys.register(ada, created, "Laptop", ip=IP, locale="en", half_login_id="other")
    # And the account page's challenge does not register during a sign-in.
    page = json.dumps(SoftAuthenticator().create(passkeys.registration_options(ada), ORIGIN))
    with pytest.raises(InvalidPasskey):
        passkeys.register(ada, page, "Laptop", ip=IP, locale="en", half_login_id=half)
    codes = passkeys.register(
        ada, created, "Laptop", ip=IP, locale="en", half_login_id=half
    ).recovery_codes
    assert codes is not None and len(codes) == 10  # M2: the first factor's codes
    assert [view.name for view in passkeys.list(ada)] == ["Laptop"]
    with pytest.raises(InvalidPasskey):  # once
        passkeys.register(ada, created, "Laptop", ip=IP, locale="en", half_login_id=half)


def test_m9_the_confirm_purpose_is_its_own() -> None:
    key = b"k" * 32
    minted = webauthn_challenges.mint(key, webauthn_challenges.CONFIRM, "b", 1000.0, 60)
    assert webauthn_challenges.check(key, minted, webauthn_challenges.CONFIRM, "b", 1001.0)
    for purpose in (webauthn_challenges.SECOND_FACTOR, webauthn_challenges.REGISTER):
        assert webauthn_challenges.check(key, minted, purpose, "b", 1001.0) is None


def test_m7_only_the_passkey_service_makes_a_proof() -> None:
    """The proof stands for a code (M7) because only Passkeys.verify_confirmation
    makes one, from a verified answer: no other module of the service builds it."""
    root = Path(userservice.__file__).parent
    makers = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "PasskeyProof(" in path.read_text(encoding="utf-8")
    )
    assert makers == ["services/passkeys.py"]
