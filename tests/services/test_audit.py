"""H2: security events are logged, with no secret in them and no way to forge lines."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import PASSWORD, login, register
from userservice.services.audit import audit


def test_login_success_failure_and_refresh_are_logged_without_secrets(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="userservice.audit")
    created = register(client, "audit@example.com")
    tokens = login(client, "audit@example.com")
    client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "audit@example.com",
            "password": "wrong pw 123",
        },
    )
    client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    text = caplog.text
    assert f"login.succeeded user={created['id']} ip=testclient" in text
    # L25: the event names the account, never the typed address.
    assert f"login.failed user={created['id']}" in text and "reason=wrong_password" in text
    assert "account=audit@example.com" not in text
    assert "token.issued" in text and "token.refreshed" in text
    assert "token.reuse_detected" in text
    for secret in (PASSWORD, "wrong pw 123", tokens["refresh_token"], tokens["access_token"]):
        assert secret not in text


def test_audit_values_cannot_inject_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="userservice.audit")
    audit("login.failed", account="evil@example.com\r\nlogin.succeeded user=admin", ip="1.2.3.4")
    records: list[Any] = [r for r in caplog.records if r.name == "userservice.audit"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "\n" not in message and "\r" not in message
    assert "\\r\\n" in message
