"""The database a serving process opens and the metrics wired to it: one place
for create_app (every worker) and for serve's metrics port (the supervisor, which
reads the mail outbox at scrape time), so that the two never build them apart.

Loads prometheus_client: serve imports it only once PROMETHEUS_MULTIPROC_DIR is
set (observability/exposition.py)."""

from __future__ import annotations

from functools import partial

from userservice.db.engine import Database, PoolOptions, build_engine, open_database
from userservice.db.outbox_backlog import outbox_backlog
from userservice.observability.db_pool import watch_pool
from userservice.observability.metrics import NoMetrics
from userservice.observability.multiprocess import OutboxGauges
from userservice.observability.prometheus import PrometheusMetrics, metrics_for
from userservice.settings import Settings

# The metrics port's own database limits: a database in trouble slows a scrape,
# never hangs it.
SCRAPE_DB_SECONDS = 5.0


def pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.database_pool_size,
        timeout_seconds=settings.database_pool_timeout_seconds,
        connect_timeout_seconds=settings.database_connect_timeout_seconds,
        statement_timeout_ms=settings.database_statement_timeout_ms,
    )


def open_serving_database(settings: Settings, pool: PoolOptions | None = None) -> Database:
    """The database with the serving pool (or `pool`)."""
    options = pool or pool_options(settings)
    return open_database(build_engine(settings.resolved_database_url(), pool=options))


def open_scrape_database(settings: Settings) -> Database:
    """The supervisor's own small pool, for the outbox reading at scrape time."""
    return open_serving_database(
        settings,
        PoolOptions(
            size=1,
            timeout_seconds=SCRAPE_DB_SECONDS,
            connect_timeout_seconds=settings.database_connect_timeout_seconds,
            statement_timeout_ms=int(SCRAPE_DB_SECONDS * 1000),
        ),
    )


def outbox_gauges(db: Database) -> OutboxGauges:
    """The mail outbox's depth and age, read from `db` at scrape time."""
    return OutboxGauges(partial(outbox_backlog, db))


def wire_metrics(settings: Settings, db: Database) -> NoMetrics:
    """The metrics a worker's services record into (NoMetrics when off), its
    database's connections and the outbox among them."""
    metrics = metrics_for(settings)
    if isinstance(metrics, PrometheusMetrics):
        watch_pool(db, metrics.pool_in_use, metrics.pool_limit)
        metrics.add_collector(outbox_gauges(db))
    return metrics
