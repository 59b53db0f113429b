"""SQLite values as SQLAlchemy stores them, for statements run on a plain sqlite3
connection: one encoder per bound parameter and one decoder per result column,
both derived from the SQLAlchemy types, so every hot read decodes alike.

SQLAlchemy keeps Uuid as 32 hex digits, Boolean as 0/1, JSON as text and DateTime
as naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"); PostgreSQL's driver returns
native values and needs none of this."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Uuid
from sqlalchemy.types import TypeEngine

Convert = Callable[[Any], Any]
_STAMP = "%Y-%m-%d %H:%M:%S.%f"


def utc(value: dt.datetime) -> dt.datetime:
    """A stored moment in UTC: SQLite hands back naive datetimes, all written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_STAMP)


def read_stamp(text: str) -> dt.datetime:
    # Appending the offset and parsing once costs a sixth of parse-then-replace
    # (up to 400 of these per admin list page).
    try:
        value = dt.datetime.fromisoformat(text + "+00:00")
    except ValueError:  # text written with an offset of its own
        value = dt.datetime.fromisoformat(text)
    # Text without a time of day parses naive: stored in UTC, like everything else.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _uuid_out(value: uuid.UUID | str) -> str:
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(value).hex


def encoder(type_: TypeEngine[Any]) -> Convert | None:
    """How a Python value of this type is bound on SQLite; None: as it is."""
    if isinstance(type_, Uuid):
        return _uuid_out
    if isinstance(type_, DateTime):
        return stamp
    if isinstance(type_, JSON):
        return json.dumps
    return None


def decoder(type_: TypeEngine[Any]) -> Convert | None:
    """How a stored value of this type is read back; None: as it is."""
    if isinstance(type_, Uuid):
        return uuid.UUID
    if isinstance(type_, DateTime):
        return read_stamp
    if isinstance(type_, Boolean):
        return bool
    if isinstance(type_, JSON):
        return json.loads
    return None


def row_decoder(types: Sequence[TypeEngine[Any]]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """One function per statement that converts exactly the columns needing it.
    It runs for every row of the bearer check and of the admin list page, so it is
    generated, as collections.namedtuple does, from the column positions alone:
    a loop over the columns cost a third more per row (measured)."""
    steps = [decoder(type_) for type_ in types]
    items = [
        f"row[{index}]"
        if step is None
        else f"(None if row[{index}] is None else s{index}(row[{index}]))"
        for index, step in enumerate(steps)
    ]
    names = {f"s{index}": step for index, step in enumerate(steps) if step is not None}
    source = f"lambda row: ({', '.join(items)}{',' if len(items) == 1 else ''})"
    decode: Callable[[tuple[Any, ...]], tuple[Any, ...]] = eval(source, names)  # noqa: S307
    return decode
