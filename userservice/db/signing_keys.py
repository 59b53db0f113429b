"""Signing keys live in the database so that every replica shares them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from userservice.db.engine import as_utc
from userservice.db.models import SigningKey
from userservice.security.jwt import KeyMaterial


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    private_pem: str
    created_at: dt.datetime
    retired_at: dt.datetime | None


def load_stored(engine: Engine) -> list[StoredKey]:
    """Every key row, oldest first (kid breaks ties, so "newest" is deterministic)."""
    with Session(engine) as session:
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


def load_keys(engine: Engine) -> list[KeyMaterial]:
    return [
        KeyMaterial(k.kid, k.alg, k.private_pem, retired=k.retired_at is not None)
        for k in load_stored(engine)
    ]


def save_key(engine: Engine, material: KeyMaterial, now: dt.datetime) -> None:
    with Session(engine) as session, session.begin():
        session.add(_row(material, now))


def replace_keys(
    engine: Engine,
    new: Iterable[KeyMaterial],
    now: dt.datetime,
    retired_by: dt.datetime,
) -> tuple[list[str], list[str]]:
    """One transaction: retire every unretired key of the new keys' algorithms, add
    the new keys, and delete keys retired at or before `retired_by`.
    Returns (retired kids, deleted kids)."""
    materials = list(new)
    algs = {m.alg for m in materials}
    with Session(engine) as session, session.begin():
        retired = list(
            session.scalars(
                update(SigningKey)
                .where(SigningKey.alg.in_(algs), SigningKey.retired_at.is_(None))
                .values(retired_at=now)
                .returning(SigningKey.kid)
            )
        )
        deleted = list(
            session.scalars(
                delete(SigningKey)
                .where(SigningKey.retired_at <= retired_by)
                .returning(SigningKey.kid)
            )
        )
        # Added after the UPDATE so the new keys are not retired with the old ones.
        session.add_all(_row(m, now) for m in materials)
    return retired, deleted


def _row(material: KeyMaterial, now: dt.datetime) -> SigningKey:
    return SigningKey(
        kid=material.kid,
        alg=material.alg,
        private_key_pem=material.private_pem,
        created_at=now,
    )
