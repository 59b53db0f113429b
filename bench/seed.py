"""A migrated database with N users, fast: `userservice db upgrade`, then bulk
inserts through SQLAlchemy Core that reuse ONE precomputed argon2id hash."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import create_engine, insert

from userservice.db.models import Base
from userservice.security.passwords import PasswordHasher
from userservice.settings import Settings

PASSWORD = "bench correct horse battery staple"  # noqa: S105 - a throwaway bench account
BATCH = 10_000


def user_email(index: int) -> str:
    return f"user{index}@bench.example"


def migrate(env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "userservice.cli", "db", "upgrade"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`userservice db upgrade` failed: {done.stderr.strip()}")


def precomputed_hash(settings: Settings) -> str:
    """One hash with the service's own parameters, so logins verify at full cost."""
    hasher = PasswordHasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    )
    return hasher.hash(PASSWORD)


def _rows(count: int, password_hash: str) -> Iterator[list[dict[str, Any]]]:
    now = dt.datetime.now(dt.UTC)
    batch: list[dict[str, Any]] = []
    for index in range(count):
        batch.append(
            {
                "id": uuid.uuid4(),
                "email": user_email(index),
                "display_name": f"Bench User {index}",
                "password_hash": password_hash,
                "is_active": True,
                "is_admin": False,
                "email_verified": True,
                "created_at": now,
                "updated_at": now,
                "tokens_valid_after": 0,
            }
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_users(database_url: str, count: int, password_hash: str) -> None:
    engine = create_engine(database_url)
    try:
        statement = insert(Base.metadata.tables["users"])
        with engine.begin() as conn:
            for batch in _rows(count, password_hash):
                conn.execute(statement, batch)  # executemany
    finally:
        engine.dispose()
