"""Alembic environment: runs on a connection handed over by userservice.db.migrate,
or builds one from Settings when invoked as plain `alembic`."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from userservice.db.engine import build_engine
from userservice.db.models import Base
from userservice.settings import Settings

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = (
        context.config.get_main_option("sqlalchemy.url")
        or Settings(
            _env_file=os.environ.get("USERSERVICE_ENV_FILE", ".env")
        ).resolved_database_url()
    )
    engine = build_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
