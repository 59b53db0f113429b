"""Sign-up (services/signup.py): a taken address is answered like a new one, in
about the same time, and its owner is told by mail with a reset link, the account
left as it was (L1); sign-up is throttled per client (L5)."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, login
from tests.support.journeys import link_in, mails
from userservice.app import create_app
from userservice.errors import EmailTaken, Throttled, WeakPassword
from userservice.records import UserRecord
from userservice.services.user_admin import AdminChanges
from userservice.settings import Settings
from userservice.wiring import Services, wired


def sign_up(svc: Services, email: str, password: str = PASSWORD, *, reveal: bool = False) -> object:
    return svc.signup.register(email, password, None, ip="192.0.2.1", locale="en", reveal=reveal)


def test_a_taken_address_mails_its_owner_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    app = client.app
    created = sign_up(services, "ada@example.com")
    assert created is not None
    assert sign_up(services, "ADA@example.com", "another passphrase here") is None
    (owner_mail,) = mails(app, "ada@example.com", "signup_existing")  # type: ignore[arg-type]
    assert link_in(owner_mail).startswith("https://testserver/reset-password?token=")
    assert len(mails(app, "ada@example.com", "verify_email")) == 1  # type: ignore[arg-type]
    login(client, "ada@example.com")  # the old password still works
    refused = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "ada@example.com",
            "password": "another passphrase here",
        },
    )
    assert refused.status_code == 400
    # The owner's link sets a password like any reset link.
    token = link_in(owner_mail).split("token=")[1]
    body = {"token": token, "password": "the owner's new passphrase"}
    assert client.post("/users/password-reset/confirm", json=body).status_code == 204


def test_revealing_mode_says_taken_and_mails_nobody(client: TestClient, services: Services) -> None:
    sign_up(services, "ada@example.com")
    with pytest.raises(EmailTaken):
        sign_up(services, "ada@example.com", reveal=True)
    assert not mails(client.app, "ada@example.com", "signup_existing")  # type: ignore[arg-type]


def test_weak_passwords_are_refused_alike(services: Services) -> None:
    sign_up(services, "ada@example.com")
    for email in ("ada@example.com", "new@example.com"):
        with pytest.raises(WeakPassword):
            sign_up(services, email, "password")


def test_a_taken_address_costs_about_the_same_time(services: Services) -> None:
    sign_up(services, "ada@example.com")

    def timed(email: str) -> float:
        start = time.perf_counter()
        sign_up(services, email)
        return time.perf_counter() - start

    # Interleaved, so that both sides share the machine's moments.
    pairs = [(timed("ada@example.com"), timed(f"new{i}@example.com")) for i in range(7)]
    taken, fresh = [p[0] for p in pairs], [p[1] for p in pairs]
    # Both hash the password (most of the time) and write a mail; a taken address
    # must not answer in a fraction of a new one's time.
    ratio = statistics.median(taken) / statistics.median(fresh)
    assert 0.5 < ratio < 2.0, (taken, fresh)


def test_sign_up_is_throttled_per_client(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(mail_limit_per_ip="3/hour"))
    with TestClient(app, base_url="https://testserver"):
        svc = wired(app)
        sign_up(svc, "a@example.com")
        sign_up(svc, "a@example.com")
        sign_up(svc, "b@example.com")
        with pytest.raises(Throttled):
            sign_up(svc, "c@example.com")
        # Another client is not held back.
        assert svc.signup.register(
            "d@example.com", PASSWORD, None, ip="198.51.100.9", locale="en", reveal=False
        )


def test_owner_mails_are_throttled_per_address(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(mail_limit_per_address="2/hour"))
    with TestClient(app, base_url="https://testserver"):
        svc = wired(app)
        sign_up(svc, "ada@example.com")
        for _ in range(4):
            assert sign_up(svc, "ada@example.com") is None
        assert len(mails(app, "ada@example.com", "signup_existing")) == 2


def test_a_disabled_account_gets_no_reset_link_by_any_route(
    client: TestClient, services: Services
) -> None:
    created = sign_up(services, "ada@example.com")
    assert isinstance(created, UserRecord)
    services.user_admin.update(uuid.uuid4(), created.id, AdminChanges(is_active=False))
    # The same answer as for any address; no mail that would reset the password of
    # an account an administrator disabled, neither by sign-up nor by reset request.
    assert sign_up(services, "ada@example.com") is None
    services.password_reset.request("ada@example.com", ip="192.0.2.1", locale="en")
    assert not mails(client.app, "ada@example.com", "signup_existing")  # type: ignore[arg-type]
    assert not mails(client.app, "ada@example.com", "reset_password")  # type: ignore[arg-type]
