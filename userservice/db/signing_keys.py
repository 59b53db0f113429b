"""Signing keys live in the database so that every replica shares them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from userservice.db.models import SigningKey
from userservice.security.jwt import KeyMaterial


def load_keys(engine: Engine) -> list[KeyMaterial]:
    with Session(engine) as session:
        rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at))
        return [
            KeyMaterial(r.kid, r.alg, r.private_key_pem, retired=r.retired_at is not None)
            for r in rows
        ]


def save_key(engine: Engine, material: KeyMaterial, now: dt.datetime) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            SigningKey(
                kid=material.kid,
                alg=material.alg,
                private_key_pem=material.private_pem,
                created_at=now,
            )
        )
