"""The PostgreSQL backend: hot statements awaited on the event loop over
autocommit psycopg connections (async_reads.py), one-row lookups of the same
moment sent together (lookup_batch.py), and a claim with its successor as one
data-modifying CTE: one round trip, no worker thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import anyio
from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from userservice.db.backend import BackupUnsupported, Database
from userservice.db.postgres.async_reads import AsyncReader
from userservice.db.postgres.lookup_batch import LookupBatcher, batched_statement
from userservice.db.prune_lock import postgres_prune_turn
from userservice.db.statement import Params, Row, Statement, Succession

_DIALECT = postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]
BIGINT = range(-(2**63), 2**63)
T = TypeVar("T")
# A pruning batch's own limits (N8). A batch waiting behind a long transaction or
# a migration's ACCESS EXCLUSIVE lock gives up after BATCH_LOCK_TIMEOUT_MS (the
# pass ends, the next interval retries) rather than wait for ever holding the
# prune turn, queueing the serving statements behind its own lock request and
# holding up a shutdown. A batch is at most db/prune.py's BATCH rows: minutes
# would mean something is wrong, and the statement ends rather than run on.
BATCH_LOCK_TIMEOUT_MS = 5_000
BATCH_STATEMENT_TIMEOUT_MS = 300_000


def compile_pg(sql: ClauseElement) -> str:
    return sql.compile(dialect=_DIALECT).string


def storable(value: object) -> bool:
    """PostgreSQL refuses NUL in text and integers beyond BIGINT, failing the whole
    statement (and, batched, the other requests of its batch): no row is stored
    under such a key, so a lookup by it finds nothing (not a 503)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, int) and not isinstance(value, bool):
        return value in BIGINT
    return True


def successor_cte(succession: Succession) -> ClauseElement:
    """The claim as a CTE, its successor inserted from it, and the claimed row
    selected: one statement."""
    claimed = succession.claim.cte("claimed")
    table = succession.table
    carried = {name: claimed.c[name] for name in succession.carried}
    fresh = {
        column: bindparam(param, type_=table.c[column].type)
        for column, param in succession.fresh.items()
    }
    columns = [*carried, *fresh]
    successor = insert(table).from_select(columns, select(*carried.values(), *fresh.values()))
    return select(claimed).add_cte(successor.cte("successor"))


class PostgresDatabase(Database):
    def __init__(self, engine: Engine, reader_connections: int = 8) -> None:
        super().__init__(engine)
        self._reader = AsyncReader(engine.url, reader_connections)
        self._sql: dict[Statement | Succession, str] = {}
        self._batchers: dict[Statement, LookupBatcher] = {}
        # Cold reads get threads of their own, so a login storm filling the default
        # threadpool cannot starve them.
        self._lookup_slots = anyio.CapacityLimiter(16)

    def watch_own_connections(self, moved: Callable[[int], None]) -> int:
        # The hot-path reader's connections are the database's too (pool gauges).
        self._reader.on_use = moved
        return self._reader.size

    def _compiled(self, statement: Statement) -> str:
        found = self._sql.get(statement)
        if found is None:
            found = self._sql[statement] = compile_pg(statement.sql)
        return found

    async def fetch(self, statement: Statement, params: Params) -> list[Row]:
        # psycopg returns UUID, bool, JSON and timezone-aware datetimes itself.
        return await self._reader.fetch(self._compiled(statement), params)

    async def fetch_one(self, statement: Statement, params: Params) -> Row | None:
        if not all(storable(value) for value in params.values()):
            return None
        if not statement.batch_keys:
            rows = await self.fetch(statement, params)
            return rows[0] if rows else None
        keys = tuple(params[name] for name in statement.batch_keys)
        return await self._batcher(statement).get(keys)

    def _batcher(self, statement: Statement) -> LookupBatcher:
        batcher = self._batchers.get(statement)
        if batcher is None:
            sql, arrays = batched_statement(self._compiled(statement), statement.batch_keys)
            batcher = self._batchers[statement] = LookupBatcher(self._reader.fetch, sql, arrays)
        return batcher

    async def scan(self, statement: Statement, params: Params) -> list[Row]:
        return await self.fetch(statement, params)

    async def write(self, statement: Statement, params: Params) -> list[Row]:
        # Autocommit: the statement is its own transaction.
        return await self.fetch(statement, params)

    async def succeed(self, succession: Succession, params: Params) -> Row | None:
        sql = self._sql.get(succession)
        if sql is None:
            sql = self._sql[succession] = compile_pg(successor_cte(succession))
        rows = await self._reader.fetch(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        # Row locks and MVCC: PostgreSQL's writers need no turn-taking of ours.
        yield

    def _begin_write(self, session: Session) -> None:
        return None

    async def run_lookup(self, func: Callable[[Engine], T]) -> T:
        return await anyio.to_thread.run_sync(func, self.engine, limiter=self._lookup_slots)

    def prune_turn(self) -> AbstractContextManager[bool]:
        return postgres_prune_turn(self.engine)

    def _lift_limits(self, session: Session) -> None:
        # The serving statement_timeout (N8) is for requests; a batch has its own.
        # JIT compiled each pruning batch's statements anew when the estimates ran
        # high (freshly loaded tables): 0.6 s of compiling for a 1 ms batch
        # (measured). SET LOCAL ends with the transaction: the pooled connection
        # goes back as it was.
        session.execute(
            text(
                f"SET LOCAL statement_timeout = {BATCH_STATEMENT_TIMEOUT_MS}; "
                f"SET LOCAL lock_timeout = {BATCH_LOCK_TIMEOUT_MS}; SET LOCAL jit = off"
            )
        )

    def backup(self, target: Path) -> None:
        raise BackupUnsupported("for PostgreSQL use pg_dump (see the README's backups section)")

    async def close_async(self) -> None:
        await self._reader.close()
