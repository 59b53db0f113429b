"""Seeds the peer's database, fast (peer venv only):

    <peer python> -m bench.peer.seed --url ASYNC_URL --users N --password-hash HASH
    <peer python> -m bench.peer.seed --make-hash PASSWORD

The first form (re)creates fastapi-users' `user` table and bulk-inserts N users
through SQLAlchemy Core `executemany`, in batches of 10,000, every user sharing ONE
precomputed hash (as bench/seed.py does for the service). The second prints a hash
made by fastapi-users' own default PasswordHelper (pwdlib, argon2 with pwdlib's
defaults), so the peer verifies logins at its own real cost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi_users.password import PasswordHelper
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from bench.peer.models import Base, User

BATCH = 10_000


def user_email(index: int) -> str:
    # Same addresses as bench/seed.py, which this venv cannot import (SQLAlchemy 2.1).
    return f"user{index}@bench.example"


def make_hash(password: str) -> str:
    return PasswordHelper().hash(password)


def _rows(count: int, password_hash: str) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, count, BATCH):
        yield [
            {
                "id": uuid.uuid4(),
                "email": user_email(index),
                "hashed_password": password_hash,
                "is_active": True,
                "is_superuser": False,
                "is_verified": True,
            }
            for index in range(start, min(start + BATCH, count))
        ]


async def seed(url: str, count: int, password_hash: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                # The service's database runs in WAL mode (persistent in the file);
                # the peer's gets the same, so the two differ by app, not file setup.
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            # A rerun on the same database starts over instead of failing on the
            # unique e-mail index; only the peer's own table is touched.
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
            statement = insert(Base.metadata.tables[User.__tablename__])
            for batch in _rows(count, password_hash):
                await conn.execute(statement, batch)  # executemany
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer.seed")
    parser.add_argument("--make-hash", metavar="PASSWORD", help="print its hash and exit")
    parser.add_argument("--url", help="async SQLAlchemy URL (sqlite+aiosqlite, postgresql+asyncpg)")
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--password-hash", metavar="HASH")
    args = parser.parse_args(argv)
    if args.make_hash is not None:
        print(make_hash(args.make_hash))
        return 0
    if not args.url or not args.password_hash or args.users < 0:
        parser.error("--url, --users N >= 0 and --password-hash are required")
    started = time.perf_counter()
    asyncio.run(seed(args.url, args.users, args.password_hash))
    elapsed = time.perf_counter() - started
    print(f"seeded {args.users} peer users in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
