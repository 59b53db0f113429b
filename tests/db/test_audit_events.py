"""The audit table on SQLite and PostgreSQL: an event recorded in a unit of work
commits with it or not at all; one recorded on the event loop is stored by itself."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from sqlalchemy import delete, select

from tests.support.event_loop import run
from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.models import AuditEvent, User
from userservice.services.audit import record, record_now


def stored(database: Database) -> list[AuditEvent]:
    with database.unit_of_work(read_only=True) as uow:
        return list(uow.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_an_event_in_a_unit_of_work_commits_with_it(database: Database) -> None:
    user, admin = uuid.uuid4(), uuid.uuid4()
    with database.unit_of_work() as uow:
        record(uow, "user.updated", user=user, actor=admin, ip="192.0.2.7", field="is_active")
    [event] = stored(database)
    assert (event.event, event.user_id, event.actor_id, event.ip) == (
        "user.updated",
        user,
        admin,
        "192.0.2.7",
    )
    assert json.loads(event.details) == {"field": "is_active"}
    assert event.occurred_at is not None


def test_an_event_of_a_rolled_back_change_is_not_stored(database: Database) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        record(uow, "user.updated", user=uuid.uuid4())
        raise RuntimeError("the change failed")
    assert stored(database) == []


def test_an_event_on_the_event_loop_is_stored_by_itself(database: Database) -> None:
    user = add_user(database)

    async def attempts() -> None:
        await record_now(
            database, "login.succeeded", user=user, client="app", ip="::1", grant="password"
        )
        await record_now(database, "login.failed", user=None, ip="::1", reason="unknown_account")

    run(database, attempts)
    first, second = stored(database)
    assert (first.event, first.user_id, first.client_id, json.loads(first.details)) == (
        "login.succeeded",
        user,
        "app",
        {"grant": "password"},
    )
    assert (second.user_id, json.loads(second.details)) == (None, {"reason": "unknown_account"})


def test_an_event_loop_event_about_no_such_account_is_not_stored_l27(database: Database) -> None:
    """L27: a login settled after its account was erased leaves no row naming it."""
    gone = uuid.uuid4()
    run(database, lambda: record_now(database, "login.failed", user=gone, ip="::1", reason="x"))
    assert stored(database) == []


def test_an_erasure_in_flight_leaves_no_event_loop_row_behind_l27(database: Database) -> None:
    """L27: an event-loop write racing an erasure waits for it and then finds no
    account, rather than slipping in after the trail was pseudonymised."""
    user = add_user(database)
    with database.unit_of_work() as uow:
        uow.scalar(select(User.id).where(User.id == user).with_for_update())
        uow.execute(delete(User).where(User.id == user))
        login = threading.Thread(
            target=run,
            args=(database, lambda: record_now(database, "login.succeeded", user=user, ip="::1")),
        )
        login.start()
        time.sleep(0.5)
        assert login.is_alive(), "the write did not wait for the erasure"
    login.join(timeout=30)
    assert not login.is_alive()
    assert stored(database) == []
