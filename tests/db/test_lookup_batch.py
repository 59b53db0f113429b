"""Concurrent bearer lookups on PostgreSQL go out as one statement
(db/lookup_batch.py), and each caller gets exactly what the single-key statement
gives for its key."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError

from userservice.db.engine import Database
from userservice.db.lookup_batch import LookupBatcher, batched_statement
from userservice.db.models import GrantRevocation, OAuthClient, RevokedAccessToken, User
from userservice.db.users import (
    _PG_BATCHED_RECORD_AND_DENIAL,
    _PG_KEY_ARRAYS,
    _PG_RECORD_AND_DENIAL,
    TokenKey,
    lookup_for_token_async,
)

FRONTEND = "userservice-frontend"


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(app: FastAPI, client: TestClient, user: dict[str, Any]) -> Database:
    database: Database = app.state.services.accounts.db
    return database


def _user_id(db: Database) -> uuid.UUID:
    with db.engine.connect() as conn:
        return conn.scalars(select(User.id)).one()


def _keys(db: Database) -> list[tuple[object, ...]]:
    user_id = _user_id(db)
    with db.engine.begin() as conn:
        conn.execute(
            insert(RevokedAccessToken).values(
                jti="denied", expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
            )
        )
        conn.execute(
            insert(GrantRevocation).values(user_id=user_id, client_id=FRONTEND, not_before=500)
        )
    return [
        (user_id, "fine", FRONTEND, 1000, None),
        (user_id, "denied", FRONTEND, 1000, None),  # jti on the deny list
        (user_id, "fine", "deleted-client", 1000, None),  # its client is gone
        (user_id, "fine", FRONTEND, 400, None),  # issued before the grant was withdrawn
        (uuid.uuid4(), "fine", FRONTEND, 1000, None),  # no such user
        (user_id, "fine", FRONTEND, 1000, None),  # the same key twice in one batch
        (user_id, "fine", FRONTEND, 400, uuid.uuid4()),  # its refresh family is gone (S5)
    ]


def _single(db: Database, key: tuple[object, ...]) -> tuple[Any, ...] | None:
    user_id, jti, client_id, iat, grant_id = key
    params = {
        "user_id": user_id,
        "jti": jti,
        "client_id": client_id,
        "iat": iat,
        "grant_id": grant_id,
    }
    rows = asyncio.run(_read_once(db, _PG_RECORD_AND_DENIAL, params))
    return tuple(rows[0]) if rows else None


async def _read_once(db: Database, sql: str, params: Mapping[str, object]) -> list[Any]:
    try:
        return await db.pg_read(sql, params)
    finally:
        await db.close_async()


def test_each_caller_gets_what_the_single_key_statement_gives(db: Database) -> None:
    keys = _keys(db)
    statements: list[str] = []

    async def counted(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return await db.pg_read(sql, params)

    batcher = LookupBatcher(counted, _PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)

    async def all_at_once() -> list[tuple[Any, ...] | None]:
        try:
            return list(await asyncio.gather(*(batcher.get(key) for key in keys)))
        finally:
            await db.close_async()

    batched = asyncio.run(all_at_once())
    assert statements == [_PG_BATCHED_RECORD_AND_DENIAL]  # one statement for all six
    assert batched == [_single(db, key) for key in keys]
    assert [row is not None and row[9] for row in batched] == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
    ]


def test_the_bearer_lookup_uses_the_batch(db: Database) -> None:
    user_id = _user_id(db)

    async def many() -> list[Any]:
        try:
            return list(
                await asyncio.gather(
                    *(
                        lookup_for_token_async(db, TokenKey(user_id, f"j{i}", FRONTEND, 1))
                        for i in range(20)
                    )
                )
            )
        finally:
            await db.close_async()

    found = asyncio.run(many())
    assert all(item is not None and item.user.id == user_id and not item.revoked for item in found)


def test_a_failed_statement_fails_every_caller_of_its_batch(db: Database) -> None:
    async def failing(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        raise OperationalError(sql, None, Exception("server closed the connection"))

    batcher = LookupBatcher(failing, _PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)
    key = (uuid.uuid4(), "j", FRONTEND, 1, None)

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(batcher.get(key), batcher.get(key), return_exceptions=True)
        )

    results = asyncio.run(both())
    assert all(isinstance(result, DBAPIError) for result in results)


def test_a_caller_that_goes_away_leaves_the_others_answered(db: Database) -> None:
    user_id = _user_id(db)
    batcher = LookupBatcher(db.pg_read, _PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)

    async def one_cancelled() -> tuple[Any, Any]:
        try:
            gone = asyncio.ensure_future(batcher.get((user_id, "a", FRONTEND, 1, None)))
            kept = asyncio.ensure_future(batcher.get((user_id, "b", FRONTEND, 1, None)))
            await asyncio.sleep(0)
            gone.cancel()
            return await asyncio.gather(gone, return_exceptions=True), await kept
        finally:
            await db.close_async()

    gone, kept = asyncio.run(one_cancelled())
    assert isinstance(gone[0], asyncio.CancelledError)
    assert kept is not None and kept[0] == user_id


def test_deleting_the_client_is_seen_by_the_next_batch(db: Database) -> None:
    user_id = _user_id(db)
    key = (user_id, "fine", FRONTEND, 1000, None)
    assert _single(db, key) is not None and not _single(db, key)[9]  # type: ignore[index]
    with db.engine.begin() as conn:
        conn.execute(delete(OAuthClient).where(OAuthClient.client_id == FRONTEND))
    batcher = LookupBatcher(db.pg_read, _PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)

    async def once() -> Any:
        try:
            return await batcher.get(key)
        finally:
            await db.close_async()

    row = asyncio.run(once())
    assert row is not None and row[9]  # revoked: no cache between the batches


def test_a_statement_with_a_parameter_that_is_not_a_key_is_refused() -> None:
    single = "SELECT 1 FROM users WHERE users.id = %(user_id)s::UUID AND %(other)s::BIGINT > 0"
    with pytest.raises(ValueError, match="not a key"):
        batched_statement(single, (("user_id", "UUID"),))
    statement, arrays = batched_statement(single.split(" AND ")[0], (("user_id", "UUID"),))
    assert arrays == ("user_id_list",)
    assert "users.id = k.user_id" in statement and "%(user_id_list)s::UUID[]" in statement


@pytest.mark.parametrize(
    "key_fields",
    [("bad\x00jti", FRONTEND, 1), ("j", "bad\x00client", 1), ("j", FRONTEND, 2**63)],
)
def test_a_key_postgresql_would_refuse_is_no_token_and_spares_the_batch(
    db: Database, key_fields: tuple[str, str, int]
) -> None:
    user_id = _user_id(db)
    jti, client_id, iat = key_fields

    async def side_by_side() -> list[Any]:
        try:
            return list(
                await asyncio.gather(
                    lookup_for_token_async(db, TokenKey(user_id, jti, client_id, iat)),
                    lookup_for_token_async(db, TokenKey(user_id, "fine", FRONTEND, 1)),
                )
            )
        finally:
            await db.close_async()

    odd, fine = asyncio.run(side_by_side())
    assert odd is None
    assert fine is not None and fine.user.id == user_id


def test_a_batch_that_cannot_be_built_fails_its_callers_instead_of_hanging() -> None:
    async def never(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        raise AssertionError("no statement may be sent for a malformed batch")

    batcher = LookupBatcher(never, _PG_BATCHED_RECORD_AND_DENIAL, _PG_KEY_ARRAYS)

    async def short_key() -> list[Any]:
        short = batcher.get((uuid.uuid4(), "j", FRONTEND, 1))  # one field missing
        return list(await asyncio.wait_for(asyncio.gather(short, return_exceptions=True), 5))

    (result,) = asyncio.run(short_key())
    assert isinstance(result, IndexError)
