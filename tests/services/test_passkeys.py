"""Passkeys (services/passkeys.py) against a software authenticator with real
keys: registration of several named passkeys by verified accounts only, origin
and RP ID from the configured public URL, every challenge single use, expiring
and bound to its account, the sign counter that must grow, user verification
required for passwordless sign-in, disabled accounts refused, every change
revoking and mailed (M9); the amr of each kind of passkey login (M10); recovery
codes with the first factor only (M2); the last factor kept under the rule (M13)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.accounts import login, register
from tests.support.journeys import mails, text_of
from tests.support.soft_authenticator import SoftAuthenticator, b64url
from userservice.app import create_app
from userservice.db.models import AuditEvent, Passkey, RecoveryCode, User
from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidInput,
    InvalidPasskey,
    NotFound,
    PasskeysUnavailable,
)
from userservice.settings import Settings
from userservice.wiring import Services, wired

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
    return services.passkeys.register(user_id, json.dumps(answer), name, ip=IP, locale="en")


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


def test_m9_several_named_passkeys_codes_with_the_first_only(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    first = add_passkey(services, ada, SoftAuthenticator(), "Laptop")
    second = add_passkey(services, ada, SoftAuthenticator(), "  Phone   key ", backup_eligible=True)
    # M2: ten codes with the first factor, shown once; none with the second.
    assert first is not None and len(set(first)) == 10
    assert second is None
    listed = services.passkeys.list(ada)
    assert [(view.name, view.synced) for view in listed] == [
        ("Laptop", False),
        ("Phone key", True),
    ]
    assert all(view.last_used_at is None for view in listed)
    added = [details for event, details in events(services, ada) if event == "factor.added"]
    assert [item["kind"] for item in added] == ["passkey", "passkey"]
    notices = mails(client.app, ADA, "passkey_added")  # type: ignore[arg-type]
    assert len(notices) == 2
    assert "A passkey was added to your" in text_of(notices[0])
    assert IP in text_of(notices[0])


def test_m9_registration_ends_every_session_and_token(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    tokens = login(client, ADA)
    add_passkey(services, ada, SoftAuthenticator())
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert (
        client.get(
            "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        ).status_code
        == 401
    )


def test_m9_the_same_authenticator_twice_is_excluded_or_a_conflict(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    options = json.loads(services.passkeys.registration_options(ada))
    # excludeCredentials names the stored one: a browser refuses to make another.
    excluded = [item["id"] for item in options["excludeCredentials"]]
    assert excluded == [b64url(authenticator.credentials[0].id)]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["attestation"] == "none"
    assert options["rp"] == {"id": "testserver", "name": services.settings.app_name}


def test_m9_a_credential_already_registered_is_a_conflict(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, BOB)
    authenticator = SoftAuthenticator()
    answer = authenticator.create(services.passkeys.registration_options(ada), ORIGIN)
    services.passkeys.register(ada, json.dumps(answer), "Key", ip=IP, locale="en")
    # The same credential id answered to a fresh challenge of another account.
    same = authenticator.credentials[0].id
    again = SoftAuthenticator().create(
        services.passkeys.registration_options(bob), ORIGIN, credential_id=same
    )
    with pytest.raises(Conflict):
        services.passkeys.register(bob, json.dumps(again), "Key", ip=IP, locale="en")
    assert services.passkeys.list(bob) == []
    assert [view.name for view in services.passkeys.list(ada)] == ["Key"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\x07bell"])
def test_m9_a_name_is_one_to_64_printable_characters(
    client: TestClient, services: Services, name: str
) -> None:
    ada = verified_user(client, services)
    with pytest.raises(InvalidInput):
        add_passkey(services, ada, SoftAuthenticator(), name)
    assert services.passkeys.list(ada) == []


def test_m3_unverified_address_gets_no_passkey(client: TestClient, services: Services) -> None:
    ada = uuid.UUID(register(client, ADA)["id"])
    with pytest.raises(EmailNotVerified):
        services.passkeys.registration_options(ada)


@pytest.mark.parametrize("where", ["origin", "rp_id"])
def test_m9_origin_and_rp_id_come_from_the_public_url(
    client: TestClient, services: Services, where: str
) -> None:
    ada = verified_user(client, services)
    options = services.passkeys.registration_options(ada)
    elsewhere = {"origin": "https://evil.test"} if where == "origin" else {"rp_id": "evil.test"}
    origin = elsewhere.pop("origin", ORIGIN)
    answer = SoftAuthenticator().create(options, origin, **elsewhere)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(ada, json.dumps(answer), "Key", ip=IP, locale="en")
    # And at sign-in, with a passkey registered properly.
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    request = services.passkeys.sign_in_options()
    answer = authenticator.get(
        request, origin, credential=authenticator.credentials[0], **elsewhere
    )
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(json.dumps(answer), ip=IP)
    reasons = [d.get("reason") for e, d in events(services, ada) if e == "login.failed"]
    assert reasons == ["verification"]


def test_m9_public_url_with_an_ip_host_offers_no_passkeys(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(issuer="https://127.0.0.1:8443"))
    with TestClient(app, base_url="https://127.0.0.1:8443"):
        services = wired(app)
        assert not services.passkeys.available
        with pytest.raises(PasskeysUnavailable):
            services.passkeys.sign_in_options()


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
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
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
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator, user_verified=False)
    assert json.loads(services.passkeys.sign_in_options())["userVerification"] == "required"
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, authenticator, user_verified=False), ip=IP)
    # After the password, presence is enough (UV preferred): the factor is the key.
    half = "h" * 43
    options = services.passkeys.second_factor_options(ada, half)
    answer = authenticator.get(options, ORIGIN, user_verified=False)
    assert services.passkeys.verify_second_factor(ada, json.dumps(answer), half, ip=IP) == "hwk"


def test_m9_a_disabled_account_never_signs_in(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator)
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == ada).values(is_active=False))
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, authenticator), ip=IP)
    reasons = [d.get("reason") for e, d in events(services, ada) if e == "login.failed"]
    assert reasons == ["disabled"]


def test_m9_an_unknown_credential_is_refused(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator, resident=False)
    stranger = SoftAuthenticator()
    stranger.create(services.passkeys.registration_options(ada), ORIGIN)  # never sent
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(passwordless(services, stranger), ip=IP)


@pytest.mark.parametrize("synced, method", [(False, "hwk"), (True, "swk")])
def test_m10_amr_of_passkey_logins(
    client: TestClient, services: Services, synced: bool, method: str
) -> None:
    ada = verified_user(client, services)
    authenticator = SoftAuthenticator()
    add_passkey(services, ada, authenticator, backup_eligible=synced)
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
    with pytest.raises(InvalidPasskey):
        services.passkeys.sign_in(garbage, ip=IP)
    with pytest.raises(InvalidPasskey):
        services.passkeys.register(ada, garbage, "Key", ip=IP, locale="en")
    with pytest.raises(InvalidPasskey):
        services.passkeys.verify_second_factor(ada, garbage, "a" * 43, ip=IP)


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
