"""R5: the Alembic chain on an empty SQLite file and an empty PostgreSQL database:
every revision upgrades, downgrades and upgrades again; populated data survives
wherever the schema keeps it; models and migrations do not drift; R2 pragmas."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.support.databases import PostgresTemplates
from userservice.db import migrate
from userservice.db.engine import build_engine
from userservice.db.models import Base, OAuthClient, RefreshToken, User

APP_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database that has never seen a migration."""
    if request.param == "sqlite":
        engine = build_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    pg: PostgresTemplates = request.getfixturevalue("pg_templates")
    url, name = pg.empty_url()
    engine = build_engine(url)
    yield engine
    engine.dispose()
    pg.drop(name)


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(migrate._config())
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _populate(engine: Engine) -> dict[str, object]:
    user_id, family = uuid.uuid4(), uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    digest = hashlib.sha256(b"refresh-token-for-migration-test").hexdigest()
    with Session(engine) as session, session.begin():
        session.add(
            User(
                id=user_id,
                email="migrated@example.com",
                display_name="Migrated",
                password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            )
        )
        session.add(
            OAuthClient(
                client_id="third-party-app",
                client_name="Third party",
                client_type="confidential",
                secret_digest=hashlib.sha256(b"secret").hexdigest(),
                token_endpoint_auth_method="client_secret_basic",
                redirect_uris=["https://app.example/cb"],
                grant_types=["authorization_code"],
                response_types=["code"],
                scope="openid",
            )
        )
        session.flush()
        session.add(
            RefreshToken(
                digest=digest,
                family_id=family,
                user_id=user_id,
                client_id="third-party-app",
                scope="openid",
                issued_at=now,
                expires_at=now + dt.timedelta(days=1),
            )
        )
    return {"user_id": user_id, "family": family, "digest": digest}


def _assert_populated(engine: Engine, data: dict[str, object], tables: set[str]) -> None:
    # Column-wise selects: after a downgrade the tables may lack newer columns.
    with Session(engine) as session:
        if "users" in tables:
            user = session.execute(
                select(User.email, User.display_name).where(User.id == data["user_id"])
            ).one()
            assert tuple(user) == ("migrated@example.com", "Migrated")
        if "oauth_clients" in tables:
            uris = session.scalar(
                select(OAuthClient.redirect_uris).where(OAuthClient.client_id == "third-party-app")
            )
            assert uris == ["https://app.example/cb"]
        if "refresh_tokens" in tables:
            token = session.execute(
                select(RefreshToken.user_id, RefreshToken.family_id).where(
                    RefreshToken.digest == data["digest"]
                )
            ).one()
            assert tuple(token) == (data["user_id"], data["family"])


def test_every_revision_upgrades_downgrades_and_upgrades_again(empty_engine: Engine) -> None:
    """R5: each step of the chain, base to head, survives upgrade / -1 / upgrade."""
    revisions = _revisions_base_to_head()
    assert revisions, "the migration chain is empty"
    assert revisions[-1] == migrate.head_revision()
    previous: str | None = None
    for revision in revisions:
        migrate.upgrade(empty_engine, revision)
        assert migrate.current_revision(empty_engine) == revision
        migrate.downgrade(empty_engine, "-1")
        assert migrate.current_revision(empty_engine) == previous
        migrate.upgrade(empty_engine, revision)
        assert migrate.current_revision(empty_engine) == revision
        previous = revision
    assert _tables(empty_engine) == APP_TABLES


def test_populated_database_survives_downgrade_and_upgrade(empty_engine: Engine) -> None:
    """R5: data written at head is still there after downgrade -1 and upgrade head
    (where the schema after the downgrade keeps the table)."""
    migrate.upgrade(empty_engine)
    data = _populate(empty_engine)
    migrate.downgrade(empty_engine, "-1")
    kept = _tables(empty_engine)
    if migrate.current_revision(empty_engine) is None:
        # The only migration was undone: back to an empty database.
        assert kept == set()
    else:
        _assert_populated(empty_engine, data, kept)
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert _tables(empty_engine) == APP_TABLES
    _assert_populated(empty_engine, data, kept)
    with Session(empty_engine) as session:
        assert session.get(OAuthClient, "userservice-frontend") is not None


def test_models_and_migrations_do_not_drift(empty_engine: Engine) -> None:
    """R5 (`alembic check`): autogenerate finds nothing between the migrated
    database and the ORM metadata."""
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_builtin_first_party_client_exists_after_migration(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with Session(empty_engine) as session:
        client = session.get(OAuthClient, "userservice-frontend")
        assert client is not None
        assert client.client_type == "public"
        assert client.is_first_party is True
        assert client.secret_digest is None
        assert "password" in client.grant_types


def test_fresh_install_has_no_users(empty_engine: Engine) -> None:
    """E6: the migration chain creates no default admin (nor any user)."""
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_sqlite_connections_enforce_foreign_keys_wal_and_busy_timeout(tmp_path: Path) -> None:
    """R2: every SQLite connection has foreign_keys=ON, WAL and a busy timeout."""
    engine = build_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        migrate.upgrade(engine)
        # A second pooled connection as well as the first: the pragmas are per connection.
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
                assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
                assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() > 0
        now = dt.datetime.now(dt.UTC)
        with pytest.raises(IntegrityError, match="FOREIGN KEY"), Session(engine) as session:
            session.add(
                RefreshToken(
                    digest="0" * 64,
                    family_id=uuid.uuid4(),
                    user_id=uuid.uuid4(),
                    client_id="userservice-frontend",
                    issued_at=now,
                    expires_at=now,
                )
            )
            session.commit()
    finally:
        engine.dispose()
