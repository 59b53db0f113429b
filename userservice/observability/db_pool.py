"""The database connections in use and their limit: SQLAlchemy's pool events, and
the backend's own connections outside the pool (db/backend.py
watch_own_connections). A gauge moved at checkout and check-in costs nothing
between them, and a scrape never has to ask the pool (whose state lives in the
worker, not in the process that answers the metrics port)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge
from sqlalchemy import event

from userservice.db.backend import Database


def watch_pool(db: Database, in_use: Gauge, limit: Gauge) -> None:
    engine = db.engine
    pool = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    # The backend's own connections outside the pool (PostgreSQL's hot-path
    # reader) are connections to the same server, held the same way.
    own = db.watch_own_connections(in_use.inc)
    # QueuePool: pool_size kept open plus max_overflow for bursts.
    limit.set(size + max(0, int(getattr(pool, "_max_overflow", 0))) + own)

    def checked_out(*_args: Any) -> None:
        in_use.inc()

    def checked_in(*_args: Any) -> None:
        in_use.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
