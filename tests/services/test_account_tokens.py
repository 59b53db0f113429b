"""The mailed links' tokens (services/account_tokens.py, E8): 256 bits from the OS
generator, only a SHA-256 stored, bound to a purpose and an address, expiring,
used at most once; anything not shaped like one of ours never reaches the
database."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.models import AccountToken
from userservice.errors import InvalidAccountToken
from userservice.services.account_tokens import AccountTokens, Purpose, well_formed

TOKENS = AccountTokens(verification_ttl=86400, reset_ttl=1800, undo_ttl=86400)


def stored(db: Database) -> list[AccountToken]:
    with db.unit_of_work(read_only=True) as session:
        return list(session.scalars(select(AccountToken)))


def test_only_the_digest_is_stored_bound_to_purpose_and_address(database: Database) -> None:
    user = add_user(database)
    with database.unit_of_work() as uow:
        raw = TOKENS.issue(uow, Purpose.RESET_PASSWORD, user, "ada@example.com")
    assert well_formed(raw) and len(raw) == 43  # 32 bytes: 256 bits
    (row,) = stored(database)
    assert row.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (row.digest, row.email, row.purpose)
    assert (row.purpose, row.email, row.user_id, row.used_at) == (
        "reset_password",
        "ada@example.com",
        user,
        None,
    )
    created = row.created_at.replace(tzinfo=dt.UTC)
    assert row.expires_at.replace(tzinfo=dt.UTC) - created == dt.timedelta(seconds=1800)


def test_every_token_is_new(database: Database) -> None:
    user = add_user(database)
    with database.unit_of_work() as uow:
        raws = {TOKENS.issue(uow, Purpose.VERIFY_EMAIL, user, "ada@example.com") for _ in range(50)}
    assert len(raws) == 50


def test_check_leaves_the_token_usable_and_use_spends_it(database: Database) -> None:
    user = add_user(database)
    with database.unit_of_work() as uow:
        raw = TOKENS.issue(uow, Purpose.VERIFY_EMAIL, user, "ada@example.com")
    for _ in range(2):
        with database.unit_of_work(read_only=True) as uow:
            assert TOKENS.check(uow, Purpose.VERIFY_EMAIL, raw) == (user, "ada@example.com")
    with database.unit_of_work() as uow:
        with pytest.raises(InvalidAccountToken):
            TOKENS.use(uow, Purpose.RESET_PASSWORD, raw)
        assert TOKENS.use(uow, Purpose.VERIFY_EMAIL, raw) == (user, "ada@example.com")
    with database.unit_of_work() as uow, pytest.raises(InvalidAccountToken):
        TOKENS.use(uow, Purpose.VERIFY_EMAIL, raw)


def test_a_use_rolled_back_with_its_change_leaves_the_token(database: Database) -> None:
    user = add_user(database)
    with database.unit_of_work() as uow:
        raw = TOKENS.issue(uow, Purpose.RESET_PASSWORD, user, "ada@example.com")
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        TOKENS.use(uow, Purpose.RESET_PASSWORD, raw)
        raise RuntimeError("the change failed")
    with database.unit_of_work() as uow:
        assert TOKENS.use(uow, Purpose.RESET_PASSWORD, raw) == (user, "ada@example.com")


@pytest.mark.parametrize(
    "raw", ["", "A" * 42, "A" * 44, "A" * 42 + "=", "A" * 42 + "\x00", "é" * 43, "\ud800" * 43]
)
def test_misshapen_values_are_refused_before_the_database(database: Database, raw: str) -> None:
    assert not well_formed(raw)
    with database.unit_of_work(read_only=True) as uow, pytest.raises(InvalidAccountToken):
        TOKENS.check(uow, Purpose.VERIFY_EMAIL, raw)


def test_lifetimes_follow_the_settings() -> None:
    assert TOKENS.lifetime(Purpose.VERIFY_EMAIL) == 86400
    assert TOKENS.lifetime(Purpose.RESET_PASSWORD) == 1800
