"""Passkeys' storage (db/passkeys.py) on SQLite and PostgreSQL: a credential id
belongs to one passkey; the sign counter moves by one conditional UPDATE that
refuses a count that does not grow (WebAuthn L2 §6.1.1) and passes zero only
against zero; a challenge is spent by exactly one of many racing answers (M9)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from sqlalchemy import select

from tests.support.races import race
from tests.support.storage import add_user
from userservice.db.engine import Database
from userservice.db.models import Passkey
from userservice.db.passkeys import PasskeyRepository, spend_challenge
from userservice.errors import Conflict


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stored(database: Database, user_id: uuid.UUID, count: int = 0, cid: bytes = b"") -> uuid.UUID:
    passkey = Passkey(
        user_id=user_id,
        credential_id=cid or os.urandom(32),
        public_key=b"\xa5cose",
        sign_count=count,
        backup_eligible=False,
        backed_up=False,
        name="Key",
        created_at=now(),
    )
    with database.unit_of_work() as uow:
        PasskeyRepository(uow).add(passkey)
        return passkey.id


def count_of(database: Database, passkey_id: uuid.UUID) -> int:
    with database.unit_of_work(read_only=True) as uow:
        return int(uow.execute(select(Passkey.sign_count).where(Passkey.id == passkey_id)).one()[0])


def advance(database: Database, passkey_id: uuid.UUID, new: int) -> bool:
    with database.unit_of_work() as uow:
        return PasskeyRepository(uow).advance(passkey_id, new, False, now())


def test_m9_a_credential_id_is_registered_once(database: Database) -> None:
    ada, bob = add_user(database), add_user(database, "bob@example.com")
    stored(database, ada, cid=b"same-credential")
    with database.unit_of_work() as uow:
        with pytest.raises(Conflict):
            PasskeyRepository(uow).add(
                Passkey(
                    user_id=bob,
                    credential_id=b"same-credential",
                    public_key=b"k",
                    backup_eligible=True,
                    backed_up=True,
                    name="Mine",
                    created_at=now(),
                )
            )
        # The savepoint kept the unit of work usable.
        assert PasskeyRepository(uow).list_for_user(bob) == []
    with database.unit_of_work(read_only=True) as uow:
        found = PasskeyRepository(uow).by_credential_id(b"same-credential")
        assert found is not None and found.user_id == ada


@pytest.mark.parametrize(
    "start, new, accepted",
    [(0, 0, True), (0, 1, True), (5, 6, True), (5, 5, False), (5, 4, False), (5, 0, False)],
)
def test_m9_the_counter_must_grow_unless_both_are_zero(
    database: Database, start: int, new: int, accepted: bool
) -> None:
    passkey_id = stored(database, add_user(database), start)
    assert advance(database, passkey_id, new) is accepted
    assert count_of(database, passkey_id) == (new if accepted else start)


def test_m9_racing_uses_of_one_count_advance_it_once(database: Database) -> None:
    passkey_id = stored(database, add_user(database), 3)
    outcomes = race(12, lambda: advance(database, passkey_id, 4))
    assert sorted(outcomes) == [False] * 11 + [True]
    assert count_of(database, passkey_id) == 4


def test_m9_a_challenge_is_spent_by_one_of_many_answers(database: Database) -> None:
    expires = now() + dt.timedelta(minutes=5)

    def spend() -> bool:
        with database.unit_of_work() as uow:
            return spend_challenge(uow, "ab" * 32, expires)

    outcomes = race(12, spend)
    assert sorted(outcomes) == [False] * 11 + [True]
    with database.unit_of_work() as uow:
        assert not spend_challenge(uow, "ab" * 32, expires)
        assert spend_challenge(uow, "cd" * 32, expires)


def test_m9_rename_and_delete_only_the_owners(database: Database) -> None:
    ada, bob = add_user(database), add_user(database, "bob@example.com")
    passkey_id = stored(database, ada)
    with database.unit_of_work() as uow:
        passkeys = PasskeyRepository(uow)
        assert not passkeys.rename(bob, passkey_id, "Mine")
        assert not passkeys.delete(bob, passkey_id)
        assert passkeys.rename(ada, passkey_id, "Work")
        assert [row.name for row in passkeys.list_for_user(ada)] == ["Work"]
        assert passkeys.delete(ada, passkey_id)
        assert passkeys.credential_ids_for_user(ada) == []
