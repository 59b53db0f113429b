"""Programmatic Alembic: upgrade, downgrade, current revision, head revision.

Alembic is imported only by the commands that migrate: a worker process needs just
the head (a constant) and the current revision (one query) for /readyz, and
importing Alembic was a third of a worker's start-up time (measured at cold start).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from userservice.errors import ServiceUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

    from userservice.db.engine import Database

_ROOT = Path(__file__).resolve().parents[2]
# The newest file in migrations/versions. tests/db/test_migrations.py walks the chain
# with Alembic and checks that it ends here, so forgetting to bump this fails the suite.
HEAD_REVISION = "0008"
VERSION_TABLE = "alembic_version"


def _config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        # Our chain is linear: one row at most (Alembic keeps one per branch head).
        found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608 - a constant
        return str(found) if found is not None else None


def head_revision() -> str:
    return HEAD_REVISION


async def revision_of(db: Database) -> str | None:
    """current_revision for readiness, never blocking the event loop on a network
    database; ServiceUnavailable when the database does not answer (R10)."""
    try:
        return await db.run_lookup(current_revision)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable("The database is unreachable.") from exc
