"""How a hot statement is handed to a backend: written once in SQLAlchemy Core,
compiled once per backend, on first use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, Table
from sqlalchemy.sql.dml import UpdateBase

Row = tuple[Any, ...]
Params = Mapping[str, object]


@dataclass(frozen=True, eq=False)
class Statement:
    """A hot-path statement, written once in SQLAlchemy Core; each backend compiles
    it once, for its own driver, on first use."""

    sql: Select[*tuple[Any, ...]] | UpdateBase
    # The parameters naming one row: PostgreSQL sends the lookups of one moment
    # together, over arrays of these (postgres/lookup_batch.py).
    batch_keys: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Succession:
    """Retire a row and insert its successor, atomically: `claim` is a conditional
    UPDATE ... RETURNING whose WHERE holds every rule, so a refused claim changes
    nothing; the successor copies the claimed row's `carried` columns and takes the
    statement parameters named in `fresh` for the others."""

    claim: UpdateBase
    table: Table
    carried: tuple[str, ...]
    fresh: Mapping[str, str]  # column -> parameter


class Runner(Protocol):
    """How a backend runs hot statements (db/backend.py Database)."""

    async def fetch(self, statement: Statement, params: Params) -> list[Row]: ...
    async def fetch_one(self, statement: Statement, params: Params) -> Row | None: ...
    async def scan(self, statement: Statement, params: Params) -> list[Row]: ...
    async def write(self, statement: Statement, params: Params) -> list[Row]: ...
    async def succeed(self, succession: Succession, params: Params) -> Row | None: ...
