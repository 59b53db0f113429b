"""Passkey ceremonies (services/passkeys.py): every challenge single use, expiring
and bound to its account or half-login, the sign counter that must grow, user
verification required for passwordless sign-in, disabled accounts and garbage
refused (M9, M6); the amr of each kind of passkey login (M10)."""

from __future__ import annotations

import copy
import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.factors import events, verified_user
from tests.support.passkey_service import (
    BOB,
    IP,
    ORIGIN,
    add_passkey,
    login_failures,
    passwordless,
    refused_by_each_ceremony,
    with_passkey,
)
from tests.support.soft_authenticator import SoftAuthenticator
from userservice.db.models import Passkey, User
from userservice.errors import (
    InvalidPasskey,
)
from userservice.wiring import Services


def test_m9_each_challenge_answers_once(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    options = services.passkeys.registration_options(ada)
    services.passkeys.register(
        ada, json.dumps(SoftAuthenticator().create(options, ORIGIN)), "One", ip=IP, locale="en"
    )
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(
            ada, json.dumps(SoftAuthenticator().create(options, ORIGIN)), "Two", ip=IP, locale="en"
        )
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    answer = passwordless(services, authenticator)
    assert services.passkeys.sign_in(answer, ip=IP).user_id == ada
    # The very same answer again: its challenge is spent.
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(answer, ip=IP)
    assert [view.name for view in services.passkeys.list(ada)] == ["One", "Laptop"]


def test_m9_an_expired_challenge_is_refused(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    earlier = copy.copy(services.passkeys)
    earlier.clock = lambda: time.time() - services.passkeys.ttl - 1
    options = earlier.registration_options(ada)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(
            ada, json.dumps(SoftAuthenticator().create(options, ORIGIN)), "Key", ip=IP, locale="en"
        )
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    late = authenticator.get(earlier.sign_in_options(), ORIGIN)
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(json.dumps(late), ip=IP)


def test_m9_a_challenge_minted_for_another_account_is_refused(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    for_bob = services.passkeys.registration_options(bob)
    answer = SoftAuthenticator().create(for_bob, ORIGIN)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(ada, json.dumps(answer), "Key", ip=IP, locale="en")
    # A sign-in challenge is no registration challenge either.
    sign_in = json.loads(services.passkeys.sign_in_options())
    forged = json.loads(for_bob)
    forged["challenge"] = sign_in["challenge"]
    answer = SoftAuthenticator().create(forged, ORIGIN)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(bob, json.dumps(answer), "Key", ip=IP, locale="en")
    assert services.passkeys.list(ada) == [] and services.passkeys.list(bob) == []


def test_m9_a_counter_that_does_not_grow_is_refused_and_audited(
    client: TestClient, services: Services
) -> None:
    ada, authenticator = with_passkey(client, services)
    services.passkeys.sign_in(passwordless(services, authenticator, counter_step=5), ip=IP)
    # A clone still at an earlier count, then one at the same count.
    for step in (-2, 0):
        with pytest.raises(InvalidPasskey):
            services.passkeys.sign_in(
                passwordless(services, authenticator, counter_step=step), ip=IP
            )
    assert [e for e, _ in events(services, ada)].count("passkey.counter_rejected") == 2
    # The stored count is still the highest seen; the original goes on working.
    services.passkeys.sign_in(passwordless(services, authenticator, counter_step=3), ip=IP)
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        assert uow.execute(select(Passkey.sign_count)).scalar_one() == 6


def test_m9_an_authenticator_without_a_counter_signs_in_every_time(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator(counts=False)
    add_passkey(services, ada, authenticator)
    for _ in range(3):
        assert (
            services.passkeys.sign_in(passwordless(services, authenticator), ip=IP).user_id == ada
        )
    assert services.passkeys.list(ada)[0].last_used_at is not None


def test_m9_passwordless_requires_user_verification(client: TestClient, services: Services) -> None:
    ada, authenticator = with_passkey(client, services, user_verified=False)
    assert json.loads(services.passkeys.sign_in_options())["userVerification"] == "required"
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, authenticator, user_verified=False), ip=IP)
    # After the password, presence is enough (UV preferred): the factor is the key.
    half = "h" * 43
    options = services.passkeys.second_factor_options(ada, half)
    answer = authenticator.get(options, ORIGIN, user_verified=False)
    assert services.passkeys.verify_second_factor(ada, json.dumps(answer), half, ip=IP) == "hwk"


def test_m9_a_disabled_account_never_signs_in(client: TestClient, services: Services) -> None:
    ada, authenticator = with_passkey(client, services)
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == ada).values(is_active=False))
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
    reasons = login_failures(services, ada)
    assert reasons == ["disabled"]


def test_m9_an_unknown_credential_is_refused(client: TestClient, services: Services) -> None:
    ada, _ = with_passkey(client, services, resident=False)
    stranger = SoftAuthenticator()
    stranger.create(services.passkeys.registration_options(ada), ORIGIN)  # never sent
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, stranger), ip=IP)


@pytest.mark.parametrize("synced, method", [(False, "hwk"), (True, "swk")])
def test_m10_amr_of_passkey_logins(
    client: TestClient, services: Services, synced: bool, method: str
) -> None:
    ada, authenticator = with_passkey(client, services, backup_eligible=synced)
    signed_in = services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
    assert signed_in.amr == (method, "mfa")
    assert abs(signed_in.auth_time - time.time()) < 5
    assert ("login.succeeded", {"method": "passkey"}) in [
        (e, {k: v for k, v in d.items() if k == "method"}) for e, d in events(services, ada)
    ]
    half = "k" * 43
    options = services.passkeys.second_factor_options(ada, half)
    answer = json.dumps(authenticator.get(options, ORIGIN))
    assert services.passkeys.verify_second_factor(ada, answer, half, ip=IP) == method


def test_m6_the_second_step_is_bound_to_its_half_login_and_account(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    bobs = SoftAuthenticator()
    add_passkey(services, bob, bobs)
    options = json.loads(services.passkeys.second_factor_options(ada, "a" * 43))
    assert len(options["allowCredentials"]) == 1
    answer = json.dumps(authenticator.get(options, ORIGIN))
    with pytest.raises(InvalidPasskey):
        services.passkeys.verify_second_factor(ada, answer, "b" * 43, ip=IP)
    # Bob's passkey does not finish Ada's sign-in.
    options = json.loads(services.passkeys.second_factor_options(ada, "c" * 43))
    answer = json.dumps(bobs.get(options, ORIGIN, credential=bobs.credentials[0]))
    with pytest.raises(InvalidPasskey):
        services.passkeys.verify_second_factor(ada, answer, "c" * 43, ip=IP)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "{",
        "[]",
        "null",
        '{"id": 1}',
        '{"id": "x", "rawId": "x", "type": "public-key", "response": {}}',
        '{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"!!",'
        '"authenticatorData":"AA","signature":"AA"}}',
        '{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30",'
        '"authenticatorData":"AA","signature":"AA","attestationObject":"oA"}}',
        "x" * 70_000,
    ],
)
def test_m9_garbage_answers_are_refused_not_errors(
    client: TestClient, services: Services, garbage: str
) -> None:
    ada = verified_user(client, services)
    refused_by_each_ceremony(services, ada, garbage)
