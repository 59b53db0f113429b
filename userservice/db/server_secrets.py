"""Secrets every replica must share (the device-cookie key), one row per name.

Values arrive here as they are to be stored (sealed or not: services/at_rest.py).
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update
# PostgreSQL's INSERT ... ON CONFLICT construct: SQLite compiles the same clause.
from sqlalchemy.dialects.postgresql import insert as upsert

from userservice.db.models import ServerSecret


def get_or_create(engine: Engine, name: str, candidate: str) -> str:
    """The stored value of `name`, after storing `candidate` if there was none.
    Replicas starting together each offer a candidate; the first insert wins and
    everyone reads back that one (no read-then-insert race)."""
    with engine.begin() as conn:
        conn.execute(
            upsert(ServerSecret)
            .values(name=name, value=candidate)
            .on_conflict_do_nothing(index_elements=[ServerSecret.name])
        )
    with engine.connect() as conn:
        stored: str = conn.execute(
            select(ServerSecret.value).where(ServerSecret.name == name)
        ).scalar_one()
    return stored


def replace_value(engine: Engine, name: str, old: str, new: str) -> None:
    """Store `new` for `name` unless the value is no longer `old` (another replica
    replaced it first, with an equivalent value)."""
    with engine.begin() as conn:
        conn.execute(
            update(ServerSecret)
            .where(ServerSecret.name == name, ServerSecret.value == old)
            .values(value=new)
        )
