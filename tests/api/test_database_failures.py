"""When the database is gone or locked: 503 with Retry-After, never a 500 and never
access granted (H3, R2, R10)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.databases import break_database
from tests.support.wiring import override
from userservice.app import create_app
from userservice.db import migrate
from userservice.db.engine import build_engine
from userservice.settings import Settings


def test_token_validation_with_the_database_down_is_503_not_access(
    client: TestClient, db_url: str, request: pytest.FixtureRequest
) -> None:
    """H3 and R10: a valid token is not honoured without the user row; /readyz says
    503, /healthz stays 200."""
    register(client, "down@example.com")
    token = login(client, "down@example.com")["access_token"]
    break_database(db_url, request)
    me = client.get("/users/me", headers=bearer(token))
    assert me.status_code == 503
    assert me.headers["retry-after"]
    assert me.headers["content-type"] == "application/problem+json"
    login_attempt = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "down@example.com", "password": PASSWORD},
    )
    assert login_attempt.status_code == 503
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_readyz_is_503_when_migrations_are_behind(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    """R10."""
    app = create_app(make_settings())
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/readyz").status_code == 200
        engine = build_engine(db_url)
        migrate.downgrade(engine, "base")
        engine.dispose()
        body = client.get("/readyz")
    assert body.status_code == 503
    assert body.json()["checks"]["migrations"] != "ok"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_locked_sqlite_database_answers_503_with_retry_after(
    client: TestClient, db_url: str
) -> None:
    """R2: writers wait busy_timeout for the lock, then 503 + Retry-After, not 500."""
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        response = client.post("/users", json={"email": "late@example.com", "password": PASSWORD})
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 503
    assert response.headers["retry-after"]
    again = client.post("/users", json={"email": "late@example.com", "password": PASSWORD})
    assert again.status_code == 201


class _NoConnectionInTime:
    async def from_bearer(self, _token: str) -> None:
        raise PoolTimeout("QueuePool limit reached, connection timed out")


def test_a_pool_with_no_free_connection_is_503_not_500(client: TestClient, app: FastAPI) -> None:
    """R2: the pool's own timeout (every connection busy) is as temporary as a
    locked database."""
    override(app, authenticator=_NoConnectionInTime())
    response = client.get("/users/me", headers=bearer("any"))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["code"] == "database_unavailable"
