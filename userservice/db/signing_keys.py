"""Signing keys live in the database so that every replica shares them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from userservice.db.codec import utc as as_utc
from userservice.db.models import SigningKey
from userservice.db.ports import Storage, UnitOfWork


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    # As stored: the PEM, or its at-rest envelope (services/at_rest.py).
    private_pem: str
    created_at: dt.datetime
    retired_at: dt.datetime | None


@dataclass(frozen=True)
class NewKey:
    kid: str
    alg: str
    stored_pem: str  # what the row is to hold: the PEM or its envelope


def load_stored(db: Storage) -> list[StoredKey]:
    """Every key row, oldest first (kid breaks ties, so "newest" is deterministic)."""
    with db.unit_of_work(read_only=True) as session:
        rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
        return [
            StoredKey(
                kid=r.kid,
                alg=r.alg,
                private_pem=r.private_key_pem,
                created_at=as_utc(r.created_at),
                retired_at=as_utc(r.retired_at) if r.retired_at is not None else None,
            )
            for r in rows
        ]


def save_key(db: Storage, key: NewKey, now: dt.datetime) -> None:
    with db.unit_of_work() as session:
        session.add(_row(key, now))


def reseal_keys(db: Storage, changes: Mapping[str, tuple[str, str]]) -> None:
    """kid -> (stored value, replacement), in one transaction. A row whose value
    changed meanwhile (another replica resealed it first) is left as it is."""
    with db.unit_of_work() as session:
        for kid, (old, replacement) in changes.items():
            session.execute(
                update(SigningKey)
                .where(SigningKey.kid == kid, SigningKey.private_key_pem == old)
                .values(private_key_pem=replacement)
            )


def lock_keys(uow: UnitOfWork, algs: Iterable[str]) -> None:
    """In the caller's transaction, wait for any other rotation of these algorithms
    to commit. Two rotations at once on PostgreSQL: the second waits here for the
    first, and its UPDATE in replace_keys (a new statement, so a new snapshot under
    READ COMMITTED) then sees and retires the first one's keys too, leaving one
    unretired key per algorithm. SQLite serializes writers anyway."""
    uow.execute(
        select(SigningKey.kid).where(SigningKey.alg.in_(list(algs))).with_for_update()
    ).all()


def replace_keys(
    uow: UnitOfWork,
    new: Iterable[NewKey],
    now: dt.datetime,
    hand_over: dt.datetime,
    retired_by: dt.datetime,
) -> tuple[list[str], list[str]]:
    """In the caller's transaction: every key of the new keys' algorithms not retired
    yet stops signing at `hand_over`, the new keys are added, and keys retired at or
    before `retired_by` are deleted. Returns (retired kids, deleted kids)."""
    keys = list(new)
    algs = {k.alg for k in keys}
    lock_keys(uow, algs)
    session = uow
    retired = list(
        session.scalars(
            update(SigningKey)
            .where(SigningKey.alg.in_(algs), SigningKey.retired_at.is_(None))
            .values(retired_at=hand_over)
            .returning(SigningKey.kid)
        )
    )
    deleted = list(
        session.scalars(
            delete(SigningKey).where(SigningKey.retired_at <= retired_by).returning(SigningKey.kid)
        )
    )
    # Added after the UPDATE so the new keys are not retired with the old ones.
    session.add_all(_row(k, now) for k in keys)
    session.flush()
    return retired, deleted


def _row(key: NewKey, now: dt.datetime) -> SigningKey:
    return SigningKey(kid=key.kid, alg=key.alg, private_key_pem=key.stored_pem, created_at=now)
