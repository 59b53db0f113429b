"""Secrets every replica must share (the device-cookie key), one row per name.

Values arrive here as they are to be stored (sealed or not: services/at_rest.py).
"""

from __future__ import annotations

from sqlalchemy import select, update

# PostgreSQL's INSERT ... ON CONFLICT construct: SQLite compiles the same clause.
from sqlalchemy.dialects.postgresql import insert as upsert

from userservice.db.models import ServerSecret
from userservice.db.ports import Storage


def get_or_create(db: Storage, name: str, candidate: str) -> str:
    """The stored value of `name`, after storing `candidate` if there was none.
    Replicas starting together each offer a candidate; the first insert wins and
    everyone reads back that one (no read-then-insert race)."""
    with db.unit_of_work() as session:
        session.execute(
            upsert(ServerSecret)
            .values(name=name, value=candidate)
            .on_conflict_do_nothing(index_elements=[ServerSecret.name])
        )
    with db.unit_of_work(read_only=True) as session:
        stored: str = session.execute(
            select(ServerSecret.value).where(ServerSecret.name == name)
        ).scalar_one()
    return stored


def replace_value(db: Storage, name: str, old: str, new: str) -> None:
    """Store `new` for `name` unless the value is no longer `old` (another replica
    replaced it first, with an equivalent value)."""
    with db.unit_of_work() as session:
        session.execute(
            update(ServerSecret)
            .where(ServerSecret.name == name, ServerSecret.value == old)
            .values(value=new)
        )
