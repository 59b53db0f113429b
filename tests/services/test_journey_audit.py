"""L9: every step of the mail journeys leaves an audit event, and none carries a
token, a digest or a password."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD
from tests.support.journeys import last_token
from userservice.app import create_app
from userservice.settings import Settings

NEW_PASSWORD = "a brand new passphrase"


def test_each_step_is_logged_without_secrets(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.audit")
    app = create_app(
        make_settings(
            require_verified_email=True,
            registration_reveals_accounts=False,
            mail_limit_per_address="2/hour",
        )
    )
    with TestClient(app, base_url="https://testserver") as client:
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/users", json=body).status_code == 202
        client.post("/users", json={**body, "password": "somebody else's words"})
        verify = last_token(app, "ada@example.com", "verify_email")
        client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
        for _ in range(3):  # the third is over the address's limit
            client.post("/users/verification", json={"email": "ada@example.com"})
        client.post("/users/verification/confirm", json={"token": "A" * 43})
        client.post("/users/verification/confirm", json={"token": verify})
        client.post("/users/password-reset", json={"email": "nobody@example.com"})
        client.post("/users/password-reset", json={"email": "ada@example.com"})
        reset = last_token(app, "ada@example.com", "reset_password")
        confirm = {"token": reset, "password": NEW_PASSWORD}
        assert client.post("/users/password-reset/confirm", json=confirm).status_code == 204
    text = caplog.text
    for event in (
        "user.registered",
        "mail.queued kind=verify_email",
        "signup.existing_address",
        "mail.queued kind=signup_existing",
        "login.refused",
        "reason=email_unverified",
        "verification.requested",
        "mail.throttled action=verify",
        "account_token.refused purpose=verify_email step=use",
        "email.verified",
        "password_reset.not_sent",
        "password_reset.requested",
        "password.changed",
        "mail.queued kind=password_changed",
        "password.reset",
    ):
        assert event in text, event
    for secret in (verify, reset, PASSWORD, NEW_PASSWORD, "somebody else's words"):
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
