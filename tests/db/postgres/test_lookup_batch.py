"""Concurrent one-row lookups on PostgreSQL go out as one statement
(db/postgres/lookup_batch.py), and each caller gets exactly what the single-key
statement gives for its key."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.support.storage import FRONTEND, add_user
from userservice.db.backend import Database
from userservice.db.models import GrantRevocation, OAuthClient, RevokedAccessToken
from userservice.db.postgres.backend import PostgresDatabase, compile_pg
from userservice.db.postgres.lookup_batch import LookupBatcher, batched_statement
from userservice.db.users import TOKEN_STANDING
from userservice.records import TokenKey, TokenStanding

T = TypeVar("T")
Key = tuple[object, ...]
Fetch = Callable[[str, Mapping[str, object]], Awaitable[list[tuple[Any, ...]]]]
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
BATCHED, ARRAYS = batched_statement(compile_pg(TOKEN_STANDING.sql), TOKEN_STANDING.batch_keys)


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(database: Database) -> PostgresDatabase:
    assert isinstance(database, PostgresDatabase)
    return database


def on_loop(db: PostgresDatabase, work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await work()
        finally:
            await db.close_async()

    return asyncio.run(main())


def reader(db: PostgresDatabase) -> Fetch:
    fetch: Fetch = db._reader.fetch
    return fetch


def _keys(db: PostgresDatabase) -> list[Key]:
    user_id = add_user(db)
    with db.unit_of_work() as session:
        session.add(
            RevokedAccessToken(jti="denied", expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        )
        session.add(GrantRevocation(user_id=user_id, client_id=FRONTEND, not_before=500))
    return [
        (user_id, "fine", FRONTEND, 1000, None),
        (user_id, "denied", FRONTEND, 1000, None),  # jti on the deny list
        (user_id, "fine", "deleted-client", 1000, None),  # its client is gone
        (user_id, "fine", FRONTEND, 400, None),  # issued before the grant was withdrawn
        (uuid.uuid4(), "fine", FRONTEND, 1000, None),  # no such user
        (user_id, "fine", FRONTEND, 1000, None),  # the same key twice in one batch
        (user_id, "fine", FRONTEND, 400, uuid.uuid4()),  # its refresh family is gone (S5)
    ]


def _single(db: PostgresDatabase, key: Key) -> tuple[Any, ...] | None:
    """The single-key statement, unbatched (Database.fetch never batches)."""
    params = dict(zip(TOKEN_STANDING.batch_keys, key, strict=True))
    rows = on_loop(db, lambda: db.fetch(TOKEN_STANDING, params))
    return tuple(rows[0]) if rows else None


def test_each_caller_gets_what_the_single_key_statement_gives(db: PostgresDatabase) -> None:
    keys = _keys(db)
    statements: list[str] = []

    async def counted(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return await reader(db)(sql, params)

    batcher = LookupBatcher(counted, BATCHED, ARRAYS)

    async def all_at_once() -> list[tuple[Any, ...] | None]:
        return list(await asyncio.gather(*(batcher.get(key) for key in keys)))

    batched = on_loop(db, all_at_once)
    assert statements == [BATCHED]  # one statement for all seven
    assert batched == [_single(db, key) for key in keys]
    revoked = [row is not None and row[9] for row in batched]
    assert revoked == [False, True, True, True, False, False, True]


def test_the_users_port_sends_the_lookups_of_one_moment_together(
    db: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = add_user(db)
    statements: list[str] = []
    fetch = reader(db)

    async def counted(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        statements.append(sql)
        return await fetch(sql, params)

    monkeypatch.setattr(db._reader, "fetch", counted)

    async def many() -> list[TokenStanding | None]:
        lookups = (
            db.users.user_for_token(TokenKey(user_id, f"j{i}", FRONTEND, 1)) for i in range(20)
        )
        return list(await asyncio.gather(*lookups))

    found = on_loop(db, many)
    assert all(item is not None and item.user.id == user_id and not item.revoked for item in found)
    assert statements == [BATCHED]  # twenty callers, one round trip


def test_a_failed_statement_fails_every_caller_of_its_batch() -> None:
    async def failing(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        raise OperationalError(sql, None, Exception("server closed the connection"))

    batcher = LookupBatcher(failing, BATCHED, ARRAYS)
    key = (uuid.uuid4(), "j", FRONTEND, 1, None)

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(batcher.get(key), batcher.get(key), return_exceptions=True)
        )

    results = asyncio.run(both())
    assert len(results) == 2 and all(isinstance(result, DBAPIError) for result in results)


def test_a_caller_that_goes_away_leaves_the_others_answered(db: PostgresDatabase) -> None:
    user_id = add_user(db)
    batcher = LookupBatcher(reader(db), BATCHED, ARRAYS)

    async def one_cancelled() -> tuple[Any, Any]:
        gone = asyncio.ensure_future(batcher.get((user_id, "a", FRONTEND, 1, None)))
        kept = asyncio.ensure_future(batcher.get((user_id, "b", FRONTEND, 1, None)))
        await asyncio.sleep(0)
        gone.cancel()
        return await asyncio.gather(gone, return_exceptions=True), await kept

    gone, kept = on_loop(db, one_cancelled)
    assert isinstance(gone[0], asyncio.CancelledError)
    assert kept is not None and kept[0] == user_id


def test_deleting_the_client_is_seen_by_the_next_batch(db: PostgresDatabase) -> None:
    user_id = add_user(db)
    key = (user_id, "fine", FRONTEND, 1000, None)
    before = _single(db, key)
    assert before is not None and not before[9]
    with db.unit_of_work() as session:
        session.delete(session.get(OAuthClient, FRONTEND))
    batcher = LookupBatcher(reader(db), BATCHED, ARRAYS)
    row = on_loop(db, lambda: batcher.get(key))
    assert row is not None and row[9]  # revoked: no cache between the batches


def test_the_batched_form_takes_its_key_types_from_the_compiled_casts() -> None:
    single = "SELECT 1 FROM users WHERE users.id = %(user_id)s::UUID AND %(other)s::BIGINT > 0"
    with pytest.raises(ValueError, match="not a key"):
        batched_statement(single, ("user_id",))
    with pytest.raises(ValueError, match="no typed parameter"):
        batched_statement("SELECT 1 WHERE %(user_id)s = 1", ("user_id",))
    statement, arrays = batched_statement(single.split(" AND ")[0], ("user_id",))
    assert arrays == ("user_id_list",)
    assert "users.id = k.user_id" in statement and "%(user_id_list)s::UUID[]" in statement
    assert tuple(f"{name}_list" for name in TOKEN_STANDING.batch_keys) == ARRAYS
    assert "%(iat_list)s::BIGINT[]" in BATCHED and "%(grant_id_list)s::UUID[]" in BATCHED


@pytest.mark.parametrize(
    "key_fields",
    [("bad\x00jti", FRONTEND, 1), ("j", "bad\x00client", 1), ("j", FRONTEND, 2**63)],
)
def test_a_key_postgresql_would_refuse_is_no_token_and_spares_the_batch(
    db: PostgresDatabase, key_fields: tuple[str, str, int]
) -> None:
    user_id = add_user(db)
    jti, client_id, iat = key_fields

    async def side_by_side() -> list[TokenStanding | None]:
        return list(
            await asyncio.gather(
                db.users.user_for_token(TokenKey(user_id, jti, client_id, iat)),
                db.users.user_for_token(TokenKey(user_id, "fine", FRONTEND, 1)),
            )
        )

    odd, fine = on_loop(db, side_by_side)
    assert odd is None
    assert fine is not None and fine.user.id == user_id


def test_a_batch_that_cannot_be_built_fails_its_callers_instead_of_hanging() -> None:
    async def never(sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        raise AssertionError("no statement may be sent for a malformed batch")

    batcher = LookupBatcher(never, BATCHED, ARRAYS)

    async def short_key() -> list[Any]:
        short = batcher.get((uuid.uuid4(), "j", FRONTEND, 1))  # one field missing
        return list(await asyncio.wait_for(asyncio.gather(short, return_exceptions=True), 5))

    (result,) = asyncio.run(short_key())
    assert isinstance(result, IndexError)
