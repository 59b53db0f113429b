"""The half-login between a correct password and the second factor
(services/half_logins.py, M6): a random id stored as SHA-256, minutes long, five
wrong codes and it is gone, and void once its user is disabled, deleted or has
everything revoked."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import anyio
import pytest
from sqlalchemy import delete, select, update

from tests.support.storage import add_user, set_user
from userservice.db.backend import Database
from userservice.db.models import HalfLogin, User
from userservice.errors import InvalidInput
from userservice.security.secrets import digest
from userservice.services.half_logins import MAX_CODE_ATTEMPTS, HalfLogins, HalfLoginState

IP = "192.0.2.1"


@pytest.fixture
def halves(database: Database) -> HalfLogins:
    return HalfLogins(database, 300)


def current(halves: HalfLogins, raw_id: str | None) -> HalfLoginState | None:
    return anyio.run(halves.current, raw_id)


def started(halves: HalfLogins, database: Database, step: str = "verify") -> tuple[uuid.UUID, str]:
    user_id = add_user(database)
    return user_id, halves.start(user_id, step, int(time.time()), "/account", ip=IP)


def test_m6_start_gives_a_random_id_stored_only_as_its_digest(
    halves: HalfLogins, database: Database
) -> None:
    user_id, raw_id = started(halves, database)
    assert len(raw_id) == 43
    with database.unit_of_work(read_only=True) as uow:
        stored = uow.scalars(select(HalfLogin.id_digest)).all()
    assert stored == [digest(raw_id)]
    state = current(halves, raw_id)
    assert state is not None
    assert (state.user.id, state.step, state.next_path, state.attempts) == (
        user_id,
        "verify",
        "/account",
        0,
    )
    with pytest.raises(InvalidInput):
        halves.start(user_id, "anything", 0, None, ip=IP)


@pytest.mark.parametrize("raw_id", [None, "", "short", "x" * 43 + "'", digest("x")[:43]])
def test_m6_malformed_or_unknown_ids_are_none(
    halves: HalfLogins, database: Database, raw_id: str | None
) -> None:
    started(halves, database)
    assert current(halves, raw_id) is None


def test_m6_expired_is_none(halves: HalfLogins, database: Database) -> None:
    _user_id, raw_id = started(halves, database)
    with database.unit_of_work() as uow:
        uow.execute(
            update(HalfLogin).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert current(halves, raw_id) is None


def test_m6_lives_the_configured_minutes(database: Database) -> None:
    halves = HalfLogins(database, 120)
    started(halves, database)
    with database.unit_of_work(read_only=True) as uow:
        row = uow.execute(select(HalfLogin.created_at, HalfLogin.expires_at)).one()
    assert (row[1] - row[0]).total_seconds() == 120


def test_m6_five_wrong_codes_and_it_is_gone(halves: HalfLogins, database: Database) -> None:
    _user_id, raw_id = started(halves, database)
    for attempt in range(1, MAX_CODE_ATTEMPTS):
        assert halves.failed(raw_id) is True
        state = current(halves, raw_id)
        assert state is not None and state.attempts == attempt
    assert halves.failed(raw_id) is False
    assert current(halves, raw_id) is None
    assert halves.failed(raw_id) is False


def test_m6_finish_deletes_it(halves: HalfLogins, database: Database) -> None:
    _user_id, raw_id = started(halves, database)
    assert halves.finish(raw_id) is True
    assert current(halves, raw_id) is None
    # Twice: nothing to do, and the caller learns another request ended it.
    assert halves.finish(raw_id) is False
    assert halves.finish("not an id") is False


def test_m6_disabled_user_is_none(halves: HalfLogins, database: Database) -> None:
    user_id, raw_id = started(halves, database)
    set_user(database, user_id, is_active=False)
    assert current(halves, raw_id) is None


def test_m6_revoked_since_the_password_is_none(halves: HalfLogins, database: Database) -> None:
    user_id, raw_id = started(halves, database)
    # A password change or sign-out everywhere after the password was checked.
    set_user(database, user_id, tokens_valid_after=int(time.time()) + 1)
    assert current(halves, raw_id) is None


def test_m6_deleted_user_takes_it_along(halves: HalfLogins, database: Database) -> None:
    user_id, raw_id = started(halves, database)
    with database.unit_of_work() as uow:
        uow.execute(delete(User).where(User.id == user_id))
    assert current(halves, raw_id) is None
    with database.unit_of_work(read_only=True) as uow:
        assert uow.scalars(select(HalfLogin.id_digest)).all() == []
