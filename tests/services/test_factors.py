"""Second factors (services/factors.py): an authenticator app counts only after a
valid code, codes within one step either side, a used step refused, wrong codes
throttled per account and audited, the secret sealed at rest (M1); ten single-use
recovery codes, regenerating voids the old ones (M2); verified accounts only, every
change revoking every session and token and mailed (M3); an administrator's reset
(M8)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from tests.support.accounts import bearer, login, register
from tests.support.factors import events, now_code, verified_user
from tests.support.journeys import mails, text_of
from tests.support.wiring import engine_of
from userservice.app import create_app
from userservice.db.models import AuditEvent, User
from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidCode,
    NotFound,
    Throttled,
)
from userservice.security.envelope import is_envelope
from userservice.services.assurance import ONE_TIME_CODE
from userservice.settings import Settings
from userservice.wiring import Services, wired

ADA = "ada@example.com"
IP = "192.0.2.7"
SECRET = "a-long-random-key-encryption-secret-0123456789"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(second_factor_limit="4/5minutes")


def enrolled(services: Services, user_id: uuid.UUID) -> tuple[str, list[str]]:
    """An app confirmed with the previous step's code (the current one stays
    usable): its secret and the recovery codes."""
    secret = services.factors.start_totp(user_id, ip=IP).secret
    codes = services.factors.confirm_totp(user_id, now_code(secret, -1), ip=IP, locale="en")
    return secret, codes


def names(services: Services, user_id: uuid.UUID) -> list[str]:
    return [event for event, _details in events(services, user_id)]


def test_m1_app_counts_only_after_a_valid_code(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    enrolment = services.factors.start_totp(ada, ip=IP)
    assert enrolment.uri.startswith(f"otpauth://totp/userservice:{ADA.replace('@', '%40')}")
    assert f"secret={enrolment.secret}" in enrolment.uri
    assert enrolment.qr_svg.startswith("<svg") and "<title>" in enrolment.qr_svg
    assert not services.factors.summary(ada).enrolled
    with pytest.raises(InvalidCode):
        services.factors.confirm_totp(ada, "000000", ip=IP, locale="en")
    assert not services.factors.summary(ada).enrolled
    codes = services.factors.confirm_totp(ada, now_code(enrolment.secret), ip=IP, locale="en")
    summary = services.factors.summary(ada)
    assert summary.enrolled and summary.totp_confirmed_at is not None
    assert summary.recovery_codes_left == 10 and len(set(codes)) == 10
    assert all(len(code) == 19 and code == code.lower() for code in codes)
    assert "factor.added" in names(services, ada)
    with pytest.raises(Conflict):
        services.factors.start_totp(ada, ip=IP)


def test_m1_a_new_enrolment_replaces_an_unconfirmed_one(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    first = services.factors.start_totp(ada, ip=IP).secret
    second = services.factors.start_totp(ada, ip=IP).secret
    assert first != second
    with pytest.raises(InvalidCode):
        services.factors.confirm_totp(ada, now_code(first), ip=IP, locale="en")
    services.factors.confirm_totp(ada, now_code(second), ip=IP, locale="en")


def test_m1_confirming_without_an_enrolment_is_not_found(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    with pytest.raises(NotFound):
        services.factors.confirm_totp(ada, "123456", ip=IP, locale="en")
    with pytest.raises(NotFound):
        services.factors.start_totp(uuid.uuid4(), ip=IP)


def test_m1_window_is_one_step_either_side(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    secret, _codes = enrolled(services, ada)
    for offset in (2, -2):
        with pytest.raises(InvalidCode):
            services.factors.verify(ada, now_code(secret, offset), ip=IP, locale="en")
    assert services.factors.verify(ada, now_code(secret, 0), ip=IP, locale="en") == ONE_TIME_CODE
    assert services.factors.verify(ada, now_code(secret, 1), ip=IP, locale="en") == ONE_TIME_CODE


def test_m1_a_used_code_and_an_earlier_one_are_refused(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    secret, _codes = enrolled(services, ada)
    current = now_code(secret, 0)
    assert services.factors.verify(ada, f"{current[:3]} {current[3:]}", ip=IP, locale="en")
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, current, ip=IP, locale="en")
    # The confirmation used the previous step: older than the last one used.
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, now_code(secret, -1), ip=IP, locale="en")
    assert ("factor.verified", {"method": "totp"}) in events(services, ada)


def test_m1_wrong_codes_are_throttled_per_account_and_audited(
    client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    bob = verified_user(client, services, "bob@example.com")
    secret, _codes = enrolled(services, ada)
    bob_secret, _ = enrolled(services, bob)
    for _ in range(4):  # second_factor_limit: 4 per 5 minutes
        with pytest.raises(InvalidCode):
            services.factors.verify(ada, "000000", ip=IP, locale="en")
    with pytest.raises(Throttled) as refused:
        services.factors.verify(ada, now_code(secret), ip=IP, locale="en")
    assert refused.value.retry_after >= 1
    # Even the right code waits: the window is the account's, not the guess's.
    assert names(services, ada).count("factor.failed") == 4
    assert names(services, ada).count("factor.throttled") == 1
    assert "factor.verified" not in names(services, ada)
    # Another account is not locked by Ada's guesses.
    assert services.factors.verify(bob, now_code(bob_secret), ip=IP, locale="en") == ONE_TIME_CODE


def test_m1_successes_are_not_counted(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    secret, codes = enrolled(services, ada)
    services.factors.verify(ada, now_code(secret, 0), ip=IP, locale="en")
    services.factors.verify(ada, now_code(secret, 1), ip=IP, locale="en")
    for code in codes[:3]:
        services.factors.verify(ada, code, ip=IP, locale="en")
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, "000000", ip=IP, locale="en")


def test_m1_secret_is_sealed_at_rest(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(key_encryption_secret=SECRET))
    with TestClient(app, base_url="https://testserver") as client:
        services = wired(app)
        ada = verified_user(client, services)
        secret, _codes = enrolled(services, ada)
        with engine_of(app).connect() as conn:
            stored = conn.execute(text("SELECT secret FROM totp_factors")).scalar_one()
            digests = conn.execute(text("SELECT digest FROM recovery_codes")).scalars().all()
        assert is_envelope(stored) and secret not in stored
        assert len(digests) == 10 and all(len(d) == 64 for d in digests)
        # Sealed, it still opens: the app's codes are accepted.
        assert services.factors.verify(ada, now_code(secret), ip=IP, locale="en") == ONE_TIME_CODE


def test_m2_recovery_codes_are_single_use_audited_and_mailed(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    _secret, codes = enrolled(services, ada)
    typed = codes[0].upper().replace("-", " ")
    assert services.factors.verify(ada, typed, ip=IP, locale="en") == ONE_TIME_CODE
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, codes[0], ip=IP, locale="en")
    assert services.factors.summary(ada).recovery_codes_left == 9
    assert ("factor.recovery_code_used", {"left": 9}) in events(services, ada)
    assert ("factor.verified", {"method": "recovery_code"}) in events(services, ada)
    [notice] = mails(app, ADA, "recovery_code_used")
    assert IP in text_of(notice)
    assert "https://testserver/forgot-password" in text_of(notice)


def test_m2_regenerating_voids_the_old_codes(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    _secret, old = enrolled(services, ada)
    new = services.factors.regenerate_recovery_codes(ada, ip=IP, locale="en")
    assert len(new) == 10 and not set(new) & set(old)
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, old[1], ip=IP, locale="en")
    assert services.factors.verify(ada, new[1], ip=IP, locale="en") == ONE_TIME_CODE
    assert "factor.recovery_codes_renewed" in names(services, ada)
    assert len(mails(app, ADA, "recovery_codes_renewed")) == 1


def test_m2_no_codes_without_an_app(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    with pytest.raises(Conflict):
        services.factors.regenerate_recovery_codes(ada, ip=IP, locale="en")
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, "aaaa-bbbb-cccc-dddd", ip=IP, locale="en")


def test_m3_unverified_account_cannot_enrol(client: TestClient, services: Services) -> None:
    ada = uuid.UUID(register(client, ADA)["id"])
    with pytest.raises(EmailNotVerified):
        services.factors.start_totp(ada, ip=IP)
    assert not services.factors.summary(ada).enrolled


@pytest.mark.parametrize("change", ["add", "remove", "reset"])
def test_m3_factor_changes_revoke_every_session_and_token(
    app: FastAPI, client: TestClient, services: Services, change: str
) -> None:
    ada = verified_user(client, services)
    root = verified_user(client, services, "root@example.com")
    secret = ""
    if change != "add":
        # The app in place, the password grant answers mfa_required: the session
        # stands for a completed sign-in.
        secret, _ = enrolled(services, ada)
    session = services.sessions.start(ada, int(time.time()), ip=IP)
    tokens = login(client, ADA) if change == "add" else None
    if change == "add":
        secret = services.factors.start_totp(ada, ip=IP).secret
        services.factors.confirm_totp(ada, now_code(secret), ip=IP, locale="en")
    elif change == "remove":
        services.factors.remove_totp(ada, ip=IP, locale="en")
    else:
        services.factors.reset(ada, actor_id=root, ip=IP)
    assert anyio.run(services.sessions.current, session) is None
    if tokens is not None:
        assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
        refreshed = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 400
    assert services.factors.summary(ada).enrolled is (change == "add")
    kind = {"add": "factor_added", "remove": "factor_removed", "reset": "factors_reset"}[change]
    assert len(mails(app, ADA, kind)) == 1
    event = {"add": "factor.added", "remove": "factor.removed", "reset": "factors.reset"}[change]
    [details] = [d for e, d in events(services, ada) if e == event]
    assert details["sessions"] == 1


def test_m3_remove_deletes_app_and_codes(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    _secret, codes = enrolled(services, ada)
    services.factors.remove_totp(ada, ip=IP, locale="en")
    assert services.factors.summary(ada) == services.factors.summary(uuid.uuid4())
    with pytest.raises(InvalidCode):
        services.factors.verify(ada, codes[0], ip=IP, locale="en")
    with pytest.raises(NotFound):
        services.factors.remove_totp(ada, ip=IP, locale="en")


def test_m8_reset_is_audited_with_the_administrator(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    root = verified_user(client, services, "root@example.com")
    services.factors.start_totp(ada, ip=IP)  # a pending app goes too
    services.factors.reset(ada, actor_id=root, ip=IP)
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        row = uow.execute(
            select(AuditEvent.actor_id, AuditEvent.details).where(
                AuditEvent.event == "factors.reset"
            )
        ).one()
    assert row[0] == root and json.loads(row[1])["app"] is True
    services.factors.start_totp(ada, ip=IP)  # enrolment possible again
    with pytest.raises(NotFound):
        services.factors.reset(uuid.uuid4(), actor_id=root, ip=IP)


def test_m3_mails_go_in_the_accounts_language(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == ada).values(locale="zh-Hans"))
    enrolled(services, ada)
    services.factors.remove_totp(ada, ip=IP, locale="en")
    for kind in ("factor_added", "factor_removed"):
        [mail] = mails(app, ADA, kind)
        assert mail["Content-Language"] == "zh-Hans"
        assert "身份验证器" in str(mail["Subject"])


def test_m2_notices_go_without_a_known_address(
    app: FastAPI, client: TestClient, services: Services
) -> None:
    ada = verified_user(client, services)
    secret = services.factors.start_totp(ada, ip=None).secret
    codes = services.factors.confirm_totp(ada, now_code(secret), ip=None, locale="en")
    services.factors.verify(ada, codes[0], ip=None, locale="en")
    services.factors.regenerate_recovery_codes(ada, ip=None, locale="en")
    for kind in ("factor_added", "recovery_code_used", "recovery_codes_renewed"):
        [mail] = mails(app, ADA, kind)
        assert "from the address" not in text_of(mail)


def test_export_lists_factors_without_secrets(client: TestClient, services: Services) -> None:
    ada = verified_user(client, services)
    assert services.privacy.export(ada)["factors"] == []
    secret, codes = enrolled(services, ada)
    services.factors.verify(ada, codes[0], ip=IP, locale="en")
    exported = services.privacy.export(ada)
    [factor] = exported["factors"]
    assert factor["kind"] == "totp" and factor["confirmed_at"] is not None
    assert (factor["recovery_codes_left"], factor["recovery_codes_used"]) == (9, 1)
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        digests = uow.execute(text("SELECT digest FROM recovery_codes")).scalars().all()
    whole = json.dumps(exported)
    for needle in [secret, *codes, *digests]:
        assert needle not in whole
