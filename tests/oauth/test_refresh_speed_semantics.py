"""Semantics the Core-statement refresh path must keep: what a rotation
writes, and that every refusal rolls its claim back."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import login
from tests.oauth.clients import (
    EMAIL,
    jwt_claims,
    public_first_party,
    refresh_row,
    set_refresh_times,
    set_user,
)
from tests.oauth.test_refresh import assert_invalid_grant, refresh


def test_rotation_keeps_family_expiry_and_grant(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    rt1 = login(client, EMAIL, scope="openid profile")["refresh_token"]
    old = refresh_row(app, rt1)
    assert old is not None
    narrowed = refresh(client, rt1, scope="openid")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "openid"
    assert jwt_claims(body["access_token"])["scope"] == "openid"
    assert jwt_claims(body["access_token"])["sub"] == user["id"]
    retired, new = refresh_row(app, rt1), refresh_row(app, body["refresh_token"])
    assert retired is not None and retired.revoked_at is not None
    assert retired.last_used_at is not None
    assert new is not None and new.revoked_at is None
    assert (new.family_id, new.user_id, new.client_id) == (
        old.family_id,
        old.user_id,
        old.client_id,
    )
    # The family keeps its grant and its absolute end; only the idle clock restarts.
    assert new.scope == "openid profile"
    assert new.expires_at.replace(tzinfo=dt.UTC) == old.expires_at.replace(tzinfo=dt.UTC)
    assert new.issued_at.replace(tzinfo=dt.UTC) > old.issued_at.replace(tzinfo=dt.UTC)
    wide_again = refresh(client, body["refresh_token"], scope="openid profile")
    assert wide_again.status_code == 200, wide_again.text


def test_refused_refreshes_retire_nothing(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    rt = user["tokens"]["refresh_token"]
    other = public_first_party(app)
    assert_invalid_grant(refresh(client, rt, client_id=other))
    assert refresh(client, rt, scope="openid admin").json()["error"] == "invalid_scope"
    set_user(app, is_active=False)
    assert_invalid_grant(refresh(client, rt))
    set_user(app, is_active=True)
    row = refresh_row(app, rt)
    assert row is not None and row.revoked_at is None and row.last_used_at is None
    set_refresh_times(app, rt, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert_invalid_grant(refresh(client, rt))
    row = refresh_row(app, rt)
    assert row is not None and row.revoked_at is None


def test_refreshed_access_token_is_not_older_than_the_revocation_mark(
    app: FastAPI, client: TestClient, user: dict[str, Any]
) -> None:
    mark = int(time.time()) + 30
    set_user(app, tokens_valid_after=mark)
    response = refresh(client, user["tokens"]["refresh_token"])
    assert response.status_code == 200, response.text
    assert jwt_claims(response.json()["access_token"])["iat"] == mark


def test_unknown_token_is_invalid_grant(client: TestClient, user: dict[str, Any]) -> None:
    assert_invalid_grant(refresh(client, "not-a-token-we-issued"))
