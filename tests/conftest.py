"""Shared fixtures. Every test that takes `db_url` runs once on SQLite and once on
the throwaway PostgreSQL server, each time on a fresh database copied from a
template that the real migration chain built."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.accounts import ISSUER, PASSWORD, login, make_admin, register
from tests.support.callers import add_third_party
from tests.support.databases import PostgresTemplates, SqliteTemplates
from tests.support.mail import keeping_transport_for
from tests.support.oauth_flow import signed_in
from tests.support.postgres import PostgresServer, PostgresUnavailable, start_postgres
from tests.support.redis import RedisServer, RedisUnavailable, start_redis
from userservice.app import create_app
from userservice.services.mail import outbox as mail_outbox
from userservice.settings import Settings
from userservice.wiring import Services, wired


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        # Never a silent skip: the PostgreSQL suite is part of "the tests pass".
        pytest.fail(f"PostgreSQL test server unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = start_redis()
    except RedisUnavailable as exc:
        # Never a silent skip, as for PostgreSQL: shared counters are part of the suite.
        pytest.fail(f"Redis test server unavailable: {exc}", pytrace=False)
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis with no counters in it (the server is shared by the session)."""
    if redis_server.process is None:
        redis_server.start()  # a test stopped it
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_templates(postgres_server: PostgresServer) -> PostgresTemplates:
    return PostgresTemplates(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        templates: SqliteTemplates = request.getfixturevalue("sqlite_templates")
        yield templates.fresh_url(tmp_path)
        return
    pg: PostgresTemplates = request.getfixturevalue("pg_templates")
    url, name = pg.fresh_url()
    yield url
    pg.drop(name)


@pytest.fixture(autouse=True)
def mail_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app a test creates keeps the mails it sends (tests.support.journeys
    reads them), since the outbox erases a mail once it is delivered."""
    monkeypatch.setattr(mail_outbox, "transport_for", keeping_transport_for)


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "data_dir": tmp_path,
            "issuer": ISSUER,
            "login_limit_per_account": "1000/minute",
            "login_limit_per_ip": "1000/minute",
            "mail_limit_per_ip": "1000/minute",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def services(app: FastAPI) -> Services:
    """The parts create_app wired (accounts, sessions, keys, ...), for a test that
    arranges or inspects state through them; to change what routes receive, use
    tests.support.wiring.override."""
    return wired(app)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def user(client: TestClient) -> dict[str, Any]:
    """A registered user with a fresh token pair."""
    created = register(client, "ada@example.com", display_name="Ada")
    tokens = login(client, "ada@example.com")
    return {**created, "password": PASSWORD, "tokens": tokens}


@pytest.fixture
def admin(app: FastAPI, client: TestClient) -> dict[str, Any]:
    make_admin(app, "root@example.com")
    tokens = login(client, "root@example.com")
    return {"email": "root@example.com", "password": PASSWORD, "tokens": tokens}


@pytest.fixture
def with_app(client: TestClient) -> TestClient:
    """The user, signed in on the hosted pages, with a third-party app registered."""
    signed_in(client)
    add_third_party(client)
    return client


os.environ.setdefault("USERSERVICE_ENV_FILE", "/dev/null")
