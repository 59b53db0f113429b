"""Privacy over the storage ports, on SQLite and PostgreSQL: the export is plain
JSON; erasure is one unit of work that leaves a tombstone saying who erased."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.models import AuditEvent, User
from userservice.errors import NotFound
from userservice.services import privacy as privacy_module
from userservice.services.audit import record
from userservice.services.privacy import Privacy


def trail(database: Database) -> list[tuple[str, uuid.UUID | None, uuid.UUID | None, str | None]]:
    with database.unit_of_work(read_only=True) as uow:
        events = uow.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.event, e.user_id, e.actor_id, e.ip) for e in events]


def test_the_export_is_json_and_names_an_administrator_by_role_only(database: Database) -> None:
    user_id = add_user(database, "ada@example.com", display_name="Ada")
    admin = add_user(database, "root@example.com")
    with database.unit_of_work() as uow:
        record(uow, "login.succeeded", user=user_id, ip="192.0.2.1", grant="password")
        record(uow, "admin.user_updated", user=user_id, actor=admin, ip="192.0.2.200")

    exported = Privacy(database).export(user_id)

    assert json.loads(json.dumps(exported)) == exported
    assert exported["profile"]["email"] == "ada@example.com"
    assert [(e["event"], e["by"], e["ip"], e["details"]) for e in exported["events"]] == [
        ("login.succeeded", "self", "192.0.2.1", {"grant": "password"}),
        ("admin.user_updated", "administrator", None, {}),
    ]
    assert str(admin) not in json.dumps(exported)


def test_unknown_accounts_are_not_found(database: Database) -> None:
    with pytest.raises(NotFound):
        Privacy(database).export(uuid.uuid4())
    with pytest.raises(NotFound):
        Privacy(database).erase(uuid.uuid4(), actor_id=None, ip=None)
    assert trail(database) == []  # no tombstone for nobody


@pytest.mark.parametrize(
    ("acting", "expected"),
    [("self", "self"), ("admin", "admin"), ("operator", "operator")],
)
def test_the_tombstone_says_who_erased(database: Database, acting: str, expected: str) -> None:
    user_id = add_user(database, "ada@example.com")
    admin = add_user(database, "root@example.com")
    actor = {"self": user_id, "admin": admin, "operator": None}[acting]

    Privacy(database).erase(user_id, actor_id=actor, ip="192.0.2.200")

    with database.unit_of_work(read_only=True) as uow:
        [tombstone] = uow.scalars(select(AuditEvent))
        assert uow.get(User, user_id) is None
    assert json.loads(tombstone.details) == {"deleted_by": expected}
    pseudonym = tombstone.user_id
    assert pseudonym not in (None, user_id)
    # Only an administrator's own id and address are kept: they are not the erased
    # person's data.
    assert (tombstone.actor_id, tombstone.ip) == {
        "self": (pseudonym, None),
        "admin": (admin, "192.0.2.200"),
        "operator": (None, None),
    }[acting]


def test_erasure_is_one_unit_of_work(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = add_user(database, "ada@example.com")
    with database.unit_of_work() as uow:
        record(uow, "login.succeeded", user=user_id, ip="192.0.2.1")
    before = trail(database)

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the tombstone could not be written")

    monkeypatch.setattr(privacy_module, "record", failing)
    with pytest.raises(RuntimeError):
        Privacy(database).erase(user_id, actor_id=user_id, ip=None)

    # Nothing half-done: the account and its trail as they were.
    assert trail(database) == before
    with database.unit_of_work(read_only=True) as uow:
        assert uow.get(User, user_id) is not None
