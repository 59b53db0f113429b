"""PostgreSQL reads on the event loop, for the bearer hot path.

Through SQLAlchemy's pool in a worker thread, one token check cost a thread round
trip, a pre-ping, BEGIN and a ROLLBACK on check-in: three network round trips
and ~0.8 ms of CPU (profiled). Here it is one round trip on an autocommit
psycopg AsyncConnection, awaited on the loop (the loop is never blocked), with
the statement prepared server-side after its first uses.

A few lines of our own rather than psycopg_pool: when the database is down a
request must fail at once (503), not wait for a background reconnect loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError


def conninfo(url: URL) -> str:
    """libpq's parameters from the engine's URL, its query included: the time limits
    (connect_timeout, the statement_timeout in `options`, db/postgres/connect.py)
    and TLS (sslmode, sslrootcert, ...) apply here as on the pool. Built key by key:
    libpq does not decode the `+` of a rendered URL's query as a space."""
    params: dict[str, str | int | None] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
    }
    for key, value in url.query.items():
        params[key] = value[-1] if isinstance(value, tuple) else value
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


class _LoopState:
    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.slots = asyncio.Semaphore(size)
        self.idle: list[psycopg.AsyncConnection[Any]] = []


class AsyncReader:
    """At most `size` connections, idle ones kept for reuse (last in, first out)."""

    def __init__(self, url: URL, size: int) -> None:
        self._conninfo = conninfo(url)
        self.size = size
        self._state: _LoopState | None = None
        # Told +1 when a statement takes a connection slot, -1 when it gives it
        # back (the pool gauges); a plain callable, so db/ knows no metrics.
        self.on_use: Callable[[int], None] | None = None

    def _for_this_loop(self) -> _LoopState:
        # Connections and the semaphore belong to one event loop: a worker has one;
        # an embedding that runs the app on a new loop (tests) gets a fresh set.
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop, self.size)
        return self._state

    async def fetch(self, sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        state = self._for_this_loop()
        async with state.slots:
            on_use = self.on_use
            if on_use is None:
                return await self._fetch(state, sql, params)
            on_use(1)
            try:
                return await self._fetch(state, sql, params)
            finally:
                on_use(-1)

    async def _fetch(
        self, state: _LoopState, sql: str, params: Mapping[str, object]
    ) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            conn = state.idle.pop() if state.idle else None
            reused = conn is not None
            try:
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                # Binary results: a quarter less CPU to decode UUIDs, timestamps
                # and booleans than text (measured).
                cursor = await conn.execute(sql, params, binary=True)
                # A write without RETURNING has no result to fetch.
                rows = await cursor.fetchall() if cursor.description is not None else []
            except psycopg.errors.QueryCanceled as exc:
                # The statement_timeout (N8): the connection is sound, and a
                # second try would only double the wait (then 503).
                if conn is not None:
                    state.idle.append(conn)
                raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from None
            except psycopg.OperationalError as exc:
                if conn is not None:
                    await conn.close()
                if reused and attempt == 1:
                    # Stale after a database restart: so are the other idle ones
                    # (taking the next idle one failed the same way, seen as a
                    # flaky 503): drop them all, once more on a new connection.
                    stale, state.idle = state.idle, []
                    for other in stale:
                        await other.close()
                    continue
                raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from None
            except psycopg.Error as exc:
                if conn is not None:
                    await conn.close()
                raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from None
            except BaseException:
                # Cancelled mid-query (the client went away): the connection's
                # state is unknown, so it is closed at once, never reused.
                if conn is not None:
                    conn.pgconn.finish()
                raise
            state.idle.append(conn)
            return rows
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        state, self._state = self._state, None
        if state is not None and state.loop is asyncio.get_running_loop():
            for conn in state.idle:
                await conn.close()
