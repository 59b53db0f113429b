"""The SQL of the export and the erasure, on SQLite and PostgreSQL: every table
that names an account goes with it, by the migrated schema's ON DELETE CASCADE or
by the erasure's own statements; the audit trail is pseudonymised, not deleted."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, inspect, select

from tests.support.retention import seed
from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.models import AuditEvent, Base, OutboxMail, User
from userservice.db.personal_data import erase, personal_data
from userservice.services.audit import record


def test_every_reference_to_an_account_cascades_in_the_migrated_schema(
    database: Database,
) -> None:
    inspector = inspect(database.engine)
    referencing = {
        (table.name, key["constrained_columns"][0]): (key.get("options") or {}).get("ondelete")
        for table in Base.metadata.sorted_tables
        for key in inspector.get_foreign_keys(table.name)
        if key["referred_table"] == "users"
    }
    assert set(referencing) == {
        ("refresh_tokens", "user_id"),
        ("authorization_codes", "user_id"),
        ("consents", "user_id"),
        ("browser_sessions", "user_id"),
        ("grant_revocations", "user_id"),
        ("account_tokens", "user_id"),
        ("mail_outbox", "user_id"),
        ("totp_factors", "user_id"),
        ("recovery_codes", "user_id"),
        ("half_logins", "user_id"),
        ("passkeys", "user_id"),
    }
    assert {rule.upper() for rule in referencing.values() if rule} == {"CASCADE"}
    assert None not in referencing.values()


def user_rows(database: Database, user_id: uuid.UUID) -> dict[str, int]:
    """How many rows of each table name the account by a foreign key."""
    counts: dict[str, int] = {}
    with database.unit_of_work(read_only=True) as uow:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if any(key.column.table.name == "users" for key in column.foreign_keys):
                    counted = select(func.count()).where(column == user_id)
                    counts[table.name] = int(uow.scalar(counted) or 0)
    return counts


def test_erase_takes_the_accounts_rows_and_keeps_its_trail_under_the_pseudonym(
    database: Database,
) -> None:
    seed(database, dt.datetime.now(dt.UTC), retention_days=30)
    with database.unit_of_work(read_only=True) as uow:
        user_id = uow.scalars(select(User.id)).one()
    other = add_user(database, "other@example.com")
    with database.unit_of_work() as uow:
        record(uow, "login.succeeded", user=user_id, ip="192.0.2.1")
        record(uow, "admin.user_updated", user=other, actor=user_id, ip="192.0.2.1")
        record(uow, "login.succeeded", user=other, ip="192.0.2.9")
    assert sum(user_rows(database, user_id).values()) >= 5
    pseudonym = uuid.uuid4()

    with database.unit_of_work() as uow:
        assert erase(uow, user_id, pseudonym) is True

    assert set(user_rows(database, user_id).values()) == {0}
    with database.unit_of_work(read_only=True) as uow:
        trail = [
            (e.event, e.user_id, e.actor_id, e.ip)
            for e in uow.scalars(select(AuditEvent).where(AuditEvent.user_id.is_not(None)))
        ]
    assert ("login.succeeded", pseudonym, None, None) in trail
    assert ("admin.user_updated", other, pseudonym, None) in trail
    assert ("login.succeeded", other, None, "192.0.2.9") in trail  # another's, untouched


def test_erase_takes_mail_to_the_address_filed_under_no_account_only(
    database: Database,
) -> None:
    user_id = add_user(database, "ada@example.com")
    other = add_user(database, "bob@example.com")
    now = dt.datetime.now(dt.UTC)
    with database.unit_of_work() as uow:
        for n, (owner, to) in enumerate(
            [(None, "ADA@example.com"), (other, "ada@example.com"), (None, "bob@example.com")]
        ):
            uow.add(
                OutboxMail(
                    message_id=f"<{n}@test>",
                    user_id=owner,
                    recipient=to,
                    kind="notice",
                    content="",
                    created_at=now,
                    next_attempt_at=now,
                )
            )

    with database.unit_of_work() as uow:
        erase(uow, user_id, uuid.uuid4())

    with database.unit_of_work(read_only=True) as uow:
        left = set(uow.scalars(select(OutboxMail.message_id)))
    # Mail filed under another account is that account's, whatever its recipient.
    assert left == {"<1@test>", "<2@test>"}


def test_an_unknown_account_has_no_data_and_nothing_to_erase(database: Database) -> None:
    add_user(database)
    with database.unit_of_work() as uow:
        assert personal_data(uow, uuid.uuid4()) is None
        assert erase(uow, uuid.uuid4(), uuid.uuid4()) is False
    with database.unit_of_work(read_only=True) as uow:
        assert uow.scalar(select(func.count()).select_from(User)) == 1
