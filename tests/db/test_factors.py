"""Second factors' storage (db/factors.py, db/half_logins.py) on SQLite and
PostgreSQL: a time step used once by one conditional UPDATE however many requests
race for it (M1), a recovery code spent once (M2), a new set voiding the old."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.support.event_loop import run
from tests.support.races import race
from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.factors import (
    MFA_REQUIRED_FOR,
    FactorRepository,
    PolicyRepository,
)
from userservice.db.half_logins import HalfLoginRepository

STEP = 59_000_000


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def with_app(database: Database, *, confirmed: bool = True) -> uuid.UUID:
    user_id = add_user(database)
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        assert factors.start_totp(user_id, "SECRET", now())
        if confirmed:
            assert factors.confirm_totp(user_id, STEP, now(), now() - dt.timedelta(minutes=15))
    return user_id


def test_m1_a_step_is_used_once_by_twenty_racing_requests(database: Database) -> None:
    user_id = with_app(database)

    def use() -> bool:
        with database.unit_of_work() as uow:
            return FactorRepository(uow).use_step(user_id, STEP + 1)

    results = race(20, use)
    assert sorted(results) == [False] * 19 + [True]


def test_m1_the_same_or_an_earlier_step_is_refused_a_later_one_accepted(
    database: Database,
) -> None:
    user_id = with_app(database)  # confirmed with STEP
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        assert not factors.use_step(user_id, STEP)
        assert not factors.use_step(user_id, STEP - 1)
        assert factors.use_step(user_id, STEP + 1)
        assert not factors.use_step(user_id, STEP + 1)
        assert factors.use_step(user_id, STEP + 2)


def test_m1_an_unconfirmed_app_takes_no_code(database: Database) -> None:
    user_id = with_app(database, confirmed=False)
    with database.unit_of_work() as uow:
        assert not FactorRepository(uow).use_step(user_id, STEP)


def test_confirmation_only_of_a_recent_pending_app_and_only_once(database: Database) -> None:
    user_id = with_app(database, confirmed=False)
    later = now() + dt.timedelta(seconds=1)
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        # Started before the cut-off: too old.
        assert not factors.confirm_totp(user_id, STEP, now(), later)
        assert factors.confirm_totp(user_id, STEP, now(), now() - dt.timedelta(minutes=15))
        assert not factors.confirm_totp(user_id, STEP + 1, now(), now() - dt.timedelta(minutes=15))
        # A confirmed app is not replaced by a new enrolment.
        assert not factors.start_totp(user_id, "OTHER", now())
        stored = factors.totp(user_id)
        assert stored is not None and stored.secret == "SECRET"
        assert stored.confirmed_at is not None


def test_m2_a_recovery_code_is_spent_once_by_racing_requests(database: Database) -> None:
    user_id = with_app(database)
    digests = [f"{n:064x}" for n in range(10)]
    with database.unit_of_work() as uow:
        FactorRepository(uow).replace_codes(user_id, digests, now())

    def use() -> bool:
        with database.unit_of_work() as uow:
            return FactorRepository(uow).use_code(user_id, digests[3], now())

    assert sorted(race(20, use)) == [False] * 19 + [True]
    with database.unit_of_work(read_only=True) as uow:
        counts = FactorRepository(uow).code_counts(user_id)
    assert (counts.left, counts.used) == (9, 1)


def test_m2_another_users_code_and_a_voided_set_are_refused(database: Database) -> None:
    ada = with_app(database)
    bob = add_user(database, "bob@example.com")
    old = [f"{n:064x}" for n in range(10)]
    new = [f"{n + 100:064x}" for n in range(10)]
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        factors.replace_codes(ada, old, now())
        assert not factors.use_code(bob, old[0], now())
        factors.replace_codes(ada, new, now())
        assert not factors.use_code(ada, old[1], now())
        assert factors.use_code(ada, new[1], now())
        assert factors.code_counts(ada).left == 9
        assert factors.delete_codes(ada) == 10


def second_factor_state(database: Database, user_id: uuid.UUID) -> tuple[bool, str | None]:
    return run(database, lambda: database.users.second_factor_state(user_id))


def test_sign_in_state_is_the_confirmed_app_and_the_policy(database: Database) -> None:
    pending = with_app(database, confirmed=False)
    assert second_factor_state(database, pending) == (
        False,
        "none",
    )  # the rule's row is seeded by the migrations
    with database.unit_of_work() as uow:
        assert FactorRepository(uow).delete_totp(pending)
    confirmed_user = add_user(database, "carol@example.com")
    with database.unit_of_work() as uow:
        factors = FactorRepository(uow)
        factors.start_totp(confirmed_user, "S", now())
        factors.confirm_totp(confirmed_user, STEP, now(), now() - dt.timedelta(minutes=1))
        PolicyRepository(uow).set(MFA_REQUIRED_FOR, "admins")
    assert second_factor_state(database, confirmed_user) == (True, "admins")
    assert second_factor_state(database, pending) == (False, "admins")
    with database.unit_of_work() as uow:
        PolicyRepository(uow).set(MFA_REQUIRED_FOR, "none")
        assert PolicyRepository(uow).get(MFA_REQUIRED_FOR) == "none"


def test_m6_concurrent_wrong_codes_each_count(database: Database) -> None:
    user_id = add_user(database)
    with database.unit_of_work() as uow:
        HalfLoginRepository(uow).add(
            "d" * 64, user_id, "verify", 0, None, now(), now() + dt.timedelta(minutes=5)
        )

    def fail() -> bool:
        with database.unit_of_work() as uow:
            return HalfLoginRepository(uow).count_failure("d" * 64) is not None

    assert race(10, fail) == [True] * 10
    with database.unit_of_work(read_only=True) as uow:
        found = HalfLoginRepository(uow).find("d" * 64, now())
    assert found is not None and found[0].attempts == 10
