"""The database pool's connections in use and its limit, from SQLAlchemy's pool
events: a gauge moved at checkout and check-in costs nothing between them, and a
scrape never has to ask the pool (whose state lives in the worker, not in the
process that answers the metrics port)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine, event


def watch_pool(engine: Engine, in_use: Gauge, limit: Gauge) -> None:
    pool = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    # QueuePool: pool_size kept open plus max_overflow for bursts.
    limit.set(size + max(0, int(getattr(pool, "_max_overflow", 0))))

    def checked_out(*_args: Any) -> None:
        in_use.inc()

    def checked_in(*_args: Any) -> None:
        in_use.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
