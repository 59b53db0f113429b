"""Revocation of access tokens (RFC 7009) through the deny-list port: the write is
one statement run by the backend (the SQLite group commit, or one autocommit
statement on PostgreSQL), never a unit of work blocking the event loop."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.accounts import bearer
from userservice.wiring import Services


def test_c9_revoking_an_access_token_takes_no_unit_of_work(
    client: TestClient, services: Services, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    access = user["tokens"]["access_token"]
    database = services.accounts.db

    def no_unit_of_work(**_: object) -> None:
        raise AssertionError("a unit of work (a blocking transaction) on the event loop")

    monkeypatch.setattr(database, "unit_of_work", no_unit_of_work)
    revoked = client.post(
        "/oauth/revoke", data={"token": access, "client_id": "userservice-frontend"}
    )
    assert revoked.status_code == 200, revoked.text
    monkeypatch.undo()
    assert client.get("/users/me", headers=bearer(access)).status_code == 401
    # Revoked twice is fine (RFC 7009 §2.2).
    again = client.post(
        "/oauth/revoke", data={"token": access, "client_id": "userservice-frontend"}
    )
    assert again.status_code == 200
