"""The clients port's hot reads (db/clients.py ClientReads): client authentication's
one read and the client_credentials token's liveness. Through either backend they
must give exactly what the same statement gives through an ORM Session."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

from tests.support.event_loop import run
from tests.support.storage import FRONTEND, add_client
from userservice.db.backend import Database
from userservice.db.clients import _CLIENT_BY_ID, ClientRepository
from userservice.db.codec import utc
from userservice.db.models import OAuthClient
from userservice.db.revoked_tokens import deny
from userservice.records import StoredClient

ODD_IDS = ("no-such-client", "nul\x00byte", "x" * 65, "")


def test_the_client_matches_the_session(database: Database) -> None:
    client_id = add_client(
        database,
        "lookup-app",
        client_name="Lookup Ü",
        client_type="confidential",
        secret_digest="ab" * 32,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uris=["https://app.example/cb", "http://127.0.0.1/cb"],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        logo_uri="https://app.example/logo.png",
        extra={"contacts": ["ops@app.example"], "nested": {"n": 1, "ok": True}},
    )
    ids = (client_id, FRONTEND, *ODD_IDS)

    async def read() -> list[StoredClient | None]:
        return [await database.clients.client(found) for found in ids]

    found = run(database, read)
    with database.unit_of_work(read_only=True) as session:
        expected = [ClientRepository(session).stored(found) for found in ids]
        row = session.execute(_CLIENT_BY_ID.sql, {"client_id": client_id}).one()
    assert found == expected
    loaded = found[0]
    assert loaded is not None
    assert loaded.redirect_uris == ["https://app.example/cb", "http://127.0.0.1/cb"]
    assert loaded.extra == {"contacts": ["ops@app.example"], "nested": {"n": 1, "ok": True}}
    assert (loaded.is_first_party, loaded.is_resource_server) == (False, False)
    assert loaded.created_at.tzinfo is not None and loaded.created_at == utc(row.created_at)
    assert found[1] is not None and found[1].is_first_party is True
    assert found[2:] == [None] * len(ODD_IDS)


def test_the_record_has_every_column_of_the_table() -> None:
    # A column added by a migration must reach client authentication too.
    assert [field.name for field in fields(StoredClient)] == [
        column.key for column in OAuthClient.__table__.columns
    ]


def test_a_client_token_lives_while_its_client_exists_and_it_is_not_denied(
    database: Database,
) -> None:
    def alive(client_id: str, jti: str) -> bool:
        return run(database, lambda: database.clients.client_token_alive(client_id, jti))

    assert alive(FRONTEND, "jti-a") is True
    assert alive("no-such-client", "jti-a") is False
    assert alive("nul\x00byte", "jti-a") is False
    with database.unit_of_work() as session:
        deny(session, "jti-a", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert alive(FRONTEND, "jti-a") is False
    assert alive(FRONTEND, "jti-b") is True
    with database.unit_of_work() as session:
        session.delete(session.get(OAuthClient, FRONTEND))
    assert alive(FRONTEND, "jti-b") is False
