"""Hot statements compiled once for SQLite, with the codec's encoders for their
parameters and decoders for their columns (db/codec.py). Parameters are named
(`:user_id`): a name used several times in a statement is encoded once."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam, insert
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from userservice.db.codec import Convert, encoder, row_decoder
from userservice.db.statement import Params, Row, Statement, Succession

_DIALECT = sqlite_dialect.dialect(paramstyle="named")


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    names: tuple[str, ...]  # each parameter once
    encoders: tuple[Convert | None, ...]
    defaults: dict[str, object]  # e.g. SQLite's `LIMIT ? OFFSET ?`: the offset, 0
    decode: Callable[[Row], Row]

    def bind(self, params: Params) -> dict[str, object]:
        values: dict[str, object] = {}
        for name, encode in zip(self.names, self.encoders, strict=True):
            value = params[name] if name in params else self.defaults[name]
            values[name] = value if encode is None or value is None else encode(value)
        return values

    def run(self, conn: sqlite3.Connection, params: Params) -> list[Row]:
        bound = self.bind(params)
        try:
            return conn.execute(self.sql, bound).fetchall()
        except sqlite3.Error as exc:  # surfaced like every other query's error (503)
            raise DBAPIError.instance(self.sql, bound, exc, sqlite3.Error) from None


def compile_sqlite(sql: ClauseElement) -> Compiled:
    compiled = cast(SQLCompiler, sql.compile(dialect=_DIALECT))
    # Rendered names, each once (an anonymous bind, e.g. OFFSET's, renders as param_1).
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    names = tuple(binds)
    columns = getattr(sql, "exported_columns", ())
    types = cast(list[TypeEngine[Any]], [column.type for column in columns])
    return Compiled(
        compiled.string,
        names,
        tuple(encoder(binds[name].type) for name in names),
        {key: value for key, value in compiled.params.items() if value is not None},
        row_decoder(types),
    )


class StatementCache:
    """Each statement compiled once per process, on first use."""

    def __init__(self) -> None:
        self._compiled: dict[Statement, Compiled] = {}
        self._successions: dict[Succession, tuple[Compiled, Compiled, tuple[int, ...]]] = {}

    def __call__(self, statement: Statement) -> Compiled:
        found = self._compiled.get(statement)
        if found is None:
            found = self._compiled[statement] = compile_sqlite(statement.sql)
        return found

    def succession(self, succession: Succession) -> tuple[Compiled, Compiled, tuple[int, ...]]:
        """The claim, and the successor's INSERT. The carried columns are bound
        without encoding: they take the claimed row's values as SQLite returned them, already
        in stored form (their positions in the claim's RETURNING come third)."""
        found = self._successions.get(succession)
        if found is None:
            table = succession.table
            values: dict[str, Any] = {
                name: bindparam(name) for name in (*succession.carried, *succession.fresh)
            }
            returning = [column.key for column in succession.claim.exported_columns]
            successor = compile_sqlite(insert(table).values(values))
            # values() types every parameter by its column: undo it for the carried.
            encoders = tuple(
                None if name in succession.carried else encode
                for name, encode in zip(successor.names, successor.encoders, strict=True)
            )
            found = (
                compile_sqlite(succession.claim),
                dataclasses.replace(successor, encoders=encoders),
                tuple(returning.index(name) for name in succession.carried),
            )
            self._successions[succession] = found
        return found
