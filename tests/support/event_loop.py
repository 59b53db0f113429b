"""Running one of the event-loop database reads from a synchronous test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from userservice.db.engine import Database

T = TypeVar("T")


def run(db: Database, read: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await read()
        finally:
            await db.close_async()  # the event loop's connections end with it

    return asyncio.run(main())
