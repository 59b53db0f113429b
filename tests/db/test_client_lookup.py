"""Client authentication's one read (db/clients.load_client). On SQLite it runs on
the plain sqlite3 connection with conversions driven by the model's column types,
on PostgreSQL on the event loop: it must give exactly what the
SQLAlchemy statement gives."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI

from tests.support.event_loop import run
from userservice.db.clients import (
    _CLIENT_BY_ID,
    _CLIENT_KEYS,
    FIRST_PARTY_CLIENT_ID,
    client_token_alive,
    load_client,
    load_client_async,
)
from userservice.db.engine import Database
from userservice.db.models import OAuthClient
from userservice.db.revoked_tokens import deny
from userservice.services.client_metadata import ClientChanges


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.services.accounts.db
    return database


def test_load_client_matches_the_core_statement(app: FastAPI, db: Database) -> None:
    issued = app.state.services.clients.create(
        ClientChanges(
            client_name="Lookup Ü",
            redirect_uris=["https://app.example/cb", "http://127.0.0.1/cb"],
            grant_types=["authorization_code", "refresh_token"],
            scope="openid profile",
            logo_uri="https://app.example/logo.png",
        )
    )
    client_id = issued.record.client_id
    loaded = load_client(db, client_id)
    assert loaded is not None
    with db.engine.connect() as conn:
        row = conn.execute(_CLIENT_BY_ID, {"client_id": client_id}).one()
    expected = dict(zip(_CLIENT_KEYS, row, strict=True))
    got = {key: getattr(loaded, key) for key in _CLIENT_KEYS}
    # The Core path hands back naive datetimes on SQLite; both mean UTC.
    for key in ("created_at", "updated_at"):
        assert got[key].replace(tzinfo=None) == expected[key].replace(tzinfo=None)
        got.pop(key), expected.pop(key)
    assert got == expected
    assert loaded.redirect_uris == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert loaded.is_first_party is False
    assert load_client(db, "no-such-client") is None
    assert load_client(db, "nul\x00byte") is None
    assert load_client(db, "x" * 65) is None
    assert run(db, lambda: load_client_async(db, client_id)) == loaded
    assert run(db, lambda: load_client_async(db, "no-such-client")) is None
    assert run(db, lambda: load_client_async(db, "nul\x00byte")) is None


def test_the_record_has_every_column_of_the_table() -> None:
    # A column added by a migration must reach client authentication too.
    assert set(_CLIENT_KEYS) == {attr.key for attr in OAuthClient.__mapper__.column_attrs}


def test_a_client_token_lives_while_its_client_exists_and_it_is_not_denied(
    app: FastAPI, db: Database
) -> None:
    assert run(db, lambda: client_token_alive(db, FIRST_PARTY_CLIENT_ID, "jti-a")) is True
    assert run(db, lambda: client_token_alive(db, "no-such-client", "jti-a")) is False
    assert run(db, lambda: client_token_alive(db, "nul\x00byte", "jti-a")) is False
    with db.unit_of_work() as session:
        deny(session, "jti-a", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert run(db, lambda: client_token_alive(db, FIRST_PARTY_CLIENT_ID, "jti-a")) is False
    assert run(db, lambda: client_token_alive(db, FIRST_PARTY_CLIENT_ID, "jti-b")) is True
