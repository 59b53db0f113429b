"""SQLite's codec (db/codec.py): the SQLite backend binds and reads hot statements on
a plain sqlite3 connection, converting values by the columns' SQLAlchemy types.
Every hot statement must read back exactly the Python values SQLAlchemy's own type
processing gives for the same rows (UUID, aware UTC datetimes, JSON, bool), for
every form a timestamp is stored in: SQLAlchemy's own text, CURRENT_TIMESTAMP's
(no fraction, from server defaults), and text written with an offset; and its
writes must store what SQLAlchemy stores."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, String, Uuid, insert, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.types import TypeEngine

from tests.support.event_loop import run
from tests.support.storage import FRONTEND, add_user
from userservice.db import clients, refresh_tokens, user_search, users
from userservice.db.backend import Database
from userservice.db.codec import decoder, encoder, read_stamp, utc
from userservice.db.models import RefreshToken
from userservice.db.sqlite.compiled import compile_sqlite
from userservice.db.statement import Statement
from userservice.records import NewRefreshToken

DIALECT = sqlite_dialect.dialect()
AUTH_TIME = 1_700_000_000
FAMILY = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
# One moment, in every form SQLite may hold it.
MOMENT = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
STAMPS = {
    "sqlalchemy": "2026-01-02 03:04:05.123456",
    "current_timestamp": "2026-01-02 03:04:05",
    "offset": "2026-01-02 05:04:05.123456+02:00",
    "negative offset": "2026-01-01 22:04:05.123456-05:00",
    "iso T and Z": "2026-01-02T03:04:05.123456Z",
}


def normal(value: Any) -> Any:
    # SQLAlchemy hands back naive datetimes for SQLite, meaning UTC (as stored).
    return utc(value) if isinstance(value, dt.datetime) else value


def sqlalchemy_reads(type_: TypeEngine[Any], stored: object) -> object:
    process = type_.dialect_impl(DIALECT).result_processor(DIALECT, None)
    return normal(process(stored) if process else stored)


@pytest.mark.parametrize("form", sorted(STAMPS))
def test_a_stored_timestamp_reads_as_sqlalchemy_reads_it(form: str) -> None:
    read = decoder(DateTime(timezone=True))
    assert read is not None
    found = read(STAMPS[form])
    assert found == sqlalchemy_reads(DateTime(timezone=True), STAMPS[form])
    assert found.utcoffset() == dt.timedelta(0)  # always aware, always UTC
    assert found == (MOMENT.replace(microsecond=0) if form == "current_timestamp" else MOMENT)


@pytest.mark.parametrize(
    ("type_", "stored"),
    [
        (Uuid(), FAMILY.hex),
        (Uuid(), str(FAMILY)),
        (Boolean(), 0),
        (Boolean(), 1),
        (JSON(), '["https://app.example/cb", "http://127.0.0.1/cb"]'),
        (JSON(), '{"n": 1, "ok": true, "nested": {"x": [null]}}'),
        (JSON(), "[]"),
        (BigInteger(), 2**62),
        (String(), "Zoë 🎉"),
    ],
)
def test_every_other_type_reads_as_sqlalchemy_reads_it(
    type_: TypeEngine[Any], stored: object
) -> None:
    read = decoder(type_)
    found = stored if read is None else read(stored)
    expected = sqlalchemy_reads(type_, stored)
    assert found == expected and type(found) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (Uuid(), FAMILY),
        (DateTime(timezone=True), MOMENT),
        (DateTime(timezone=True), MOMENT.replace(microsecond=0)),
        (JSON(), ["a", {"b": None}]),
    ],
)
def test_a_bound_value_is_stored_as_sqlalchemy_stores_it(
    type_: TypeEngine[Any], value: object
) -> None:
    write = encoder(type_)
    process = type_.dialect_impl(DIALECT).bind_processor(DIALECT)
    assert write is not None and process is not None
    found, expected = write(value), process(value)
    if isinstance(type_, JSON):  # the same document, whatever the spacing
        assert json.loads(found) == json.loads(expected)
    else:
        assert found == expected


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rows(database: Database) -> Iterator[dict[str, Any]]:
    """A user, a client and a refresh token whose timestamps are stored in the
    forms CURRENT_TIMESTAMP and a writer with an offset leave behind."""
    user_id = add_user(
        database,
        "codec@example.com",
        display_name="Zoë",
        email_verified=True,
        tokens_valid_after=77,
    )
    token = NewRefreshToken(
        "codec-digest",
        FAMILY,
        user_id,
        FRONTEND,
        "openid profile",
        MOMENT,
        MOMENT + dt.timedelta(days=3650),
        auth_time=1_700_000_000,
    )
    run(database, lambda: database.refresh_tokens.insert(token))
    with sqlite3.connect(str(database.engine.url.database)) as raw:
        raw.execute(
            "UPDATE users SET created_at = ?, updated_at = ?",
            (STAMPS["offset"], STAMPS["current_timestamp"]),
        )
        raw.execute(
            "UPDATE oauth_clients SET created_at = ?, updated_at = ?",
            (STAMPS["negative offset"], STAMPS["iso T and Z"]),
        )
        raw.execute("UPDATE refresh_tokens SET issued_at = ?", (STAMPS["offset"],))
    raw.close()
    yield {
        "user_id": user_id,
        "email": "codec@example.com",
        "jti": "jti-1",
        "client_id": FRONTEND,
        "iat": 1000,
        "grant_id": FAMILY,
        "token_digest": "codec-digest",
        "name": "zo",
        "after_email": "a",
        "limit": 10,
        "policy": "mfa_required_for",
    }


def hot_statements() -> list[Statement]:
    """Every Statement the storage ports run (module constants, and the search's
    one per filter shape)."""
    found = [
        value
        for module in (users, clients, refresh_tokens)
        for value in vars(module).values()
        if isinstance(value, Statement)
    ]
    return found + list(user_search._BY_SHAPE.values())


def test_every_hot_read_decodes_as_sqlalchemy_does(
    database: Database, rows: dict[str, Any]
) -> None:
    reads = [s for s in hot_statements() if not hasattr(s.sql, "table")]
    assert len(reads) >= 12  # the users', clients', refresh tokens' and search reads

    async def through_the_backend() -> list[list[tuple[Any, ...]]]:
        return [await database.fetch(statement, rows) for statement in reads]

    found = run(database, through_the_backend)
    with database.unit_of_work(read_only=True) as session:
        expected = [
            [tuple(normal(value) for value in row) for row in session.execute(s.sql, rows)]
            for s in reads
        ]
    assert found == expected
    assert all(found), "every read must find its row, or it checks nothing"
    standing = found[[s.sql for s in reads].index(users.TOKEN_STANDING.sql)][0]
    assert standing[0] == rows["user_id"] and standing[6] == MOMENT
    assert standing[7] == MOMENT.replace(microsecond=0) and standing[9:] == (False, True)


def test_the_claim_returns_what_sqlalchemy_returns(
    database: Database, rows: dict[str, Any]
) -> None:
    """The claim's RETURNING, read by the codec, against SQLAlchemy's processing of
    the same stored values for the same column types. (Through a Session the
    claim cannot run as it is: its `client_id` parameter, named like a column,
    would be taken for a SET value.)"""
    now = MOMENT + dt.timedelta(days=1)
    params = {
        "token_digest": "codec-digest",
        "successor_digest": "codec-successor",
        "client_id": FRONTEND,
        "requested": json.dumps(["openid"]),
        "now": now,
        "idle_cutoff": now - dt.timedelta(days=30),
    }
    claim = refresh_tokens.ROTATION.claim
    compiled = compile_sqlite(claim)
    with sqlite3.connect(str(database.engine.url.database), isolation_level=None) as raw:
        raw.execute("BEGIN")
        (stored,) = compiled.run(raw, params)
        raw.execute("ROLLBACK")
    raw.close()
    types = [column.type for column in claim.exported_columns]
    expected = tuple(
        sqlalchemy_reads(type_, value) for type_, value in zip(types, stored, strict=True)
    )
    assert compiled.decode(stored) == expected
    claimed = run(database, lambda: database.succeed(refresh_tokens.ROTATION, params))
    assert claimed == expected
    # auth_time, the mark, and the family's amr (NULL: the password alone).
    assert claimed[:2] == (FAMILY, rows["user_id"]) and claimed[5:] == (1_700_000_000, 77, None)


def test_the_port_stores_what_sqlalchemy_stores(database: Database) -> None:
    user_id = add_user(database)
    expires_at = MOMENT.replace(microsecond=0) + dt.timedelta(days=30)
    token = NewRefreshToken(
        "by-the-port",
        FAMILY,
        user_id,
        FRONTEND,
        "openid profile",
        MOMENT,
        expires_at,
        1_700_000_000,
    )
    with database.unit_of_work() as session:
        values = asdict(token) | {"digest": "by-sqlalchemy"}
        session.execute(insert(RefreshToken).values(**values))
    run(database, lambda: database.refresh_tokens.insert(token))

    def stored(token_digest: str) -> tuple[Any, ...]:
        with sqlite3.connect(str(database.engine.url.database)) as raw:
            row: tuple[Any, ...] = raw.execute(
                "SELECT family_id, user_id, client_id, scope, issued_at, expires_at, auth_time"
                " FROM refresh_tokens WHERE digest = ?",
                (token_digest,),
            ).fetchone()
        raw.close()
        return row

    assert stored("by-the-port") == stored("by-sqlalchemy")
    with database.unit_of_work(read_only=True) as session:
        both = session.scalars(select(RefreshToken).order_by(RefreshToken.id)).all()
        assert [(row.issued_at, row.expires_at) for row in both] == [
            (MOMENT.replace(tzinfo=None), expires_at.replace(tzinfo=None))
        ] * 2


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-02", dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
        ("2026-01-02 03:04:05", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ("2026-01-02T03:04:05+02:00", dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.UTC)),
    ],
)
def test_every_stored_moment_reads_as_aware_utc(text: str, moment: dt.datetime) -> None:
    """Text with no time of day, or no offset, was written in UTC like every other
    stored moment: it never reads back naive (which would compare as local time)."""
    found = read_stamp(text)
    assert found == moment and found.tzinfo is dt.UTC
