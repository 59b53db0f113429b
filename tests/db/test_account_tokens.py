"""Single-use account tokens in storage (db/account_tokens.py): a use is one
conditional UPDATE ... RETURNING, so a refused use changes nothing and of parallel
uses exactly one wins (E8), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from sqlalchemy import select

from tests.support.storage import add_user
from userservice.db.account_tokens import AccountTokenRepository, addressee
from userservice.db.backend import Database
from userservice.db.models import AccountToken

NOW = dt.datetime.now(dt.UTC)
LATER = NOW + dt.timedelta(minutes=30)


def add_token(
    db: Database, user_id: uuid.UUID, token_digest: str = "d" * 64, **values: object
) -> str:
    fields: dict[str, object] = {
        "purpose": "reset_password",
        "email": "ada@example.com",
        "now": NOW,
        "expires_at": LATER,
    }
    fields.update(values)
    with db.unit_of_work() as session:
        AccountTokenRepository(session).add(token_digest, user_id=user_id, **fields)  # type: ignore[arg-type]
    return token_digest


def used_at(db: Database, token_digest: str) -> dt.datetime | None:
    with db.unit_of_work(read_only=True) as session:
        value: dt.datetime | None = session.scalar(
            select(AccountToken.used_at).where(AccountToken.digest == token_digest)
        )
    return value


def use(db: Database, token_digest: str, purpose: str = "reset_password") -> object:
    with db.unit_of_work() as session:
        return AccountTokenRepository(session).use(token_digest, purpose, NOW)


def test_a_token_is_used_once(database: Database) -> None:
    user = add_user(database)
    token = add_token(database, user)
    assert use(database, token) == (user, "ada@example.com")
    assert used_at(database, token) is not None
    assert use(database, token) is None


def test_refused_uses_change_nothing(database: Database) -> None:
    user = add_user(database)
    expired = add_token(database, user, "e" * 64, expires_at=NOW - dt.timedelta(seconds=1))
    other = add_token(database, user, "f" * 64, purpose="verify_email")
    assert use(database, expired) is None
    assert use(database, other, "reset_password") is None
    assert use(database, "0" * 64) is None
    assert used_at(database, expired) is None and used_at(database, other) is None
    # The right purpose still works afterwards: the refusals left it unused.
    assert use(database, other, "verify_email") == (user, "ada@example.com")


def test_usable_reads_without_using(database: Database) -> None:
    user = add_user(database)
    token = add_token(database, user)
    with database.unit_of_work(read_only=True) as session:
        repo = AccountTokenRepository(session)
        assert repo.usable(token, "reset_password", NOW) == (user, "ada@example.com")
        assert repo.usable(token, "verify_email", NOW) is None
        assert repo.usable(token, "reset_password", LATER) is None
    assert used_at(database, token) is None


def test_parallel_uses_exactly_one_wins(database: Database) -> None:
    user = add_user(database)
    token = add_token(database, user)
    barrier = threading.Barrier(12)
    results: list[object] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        found = use(database, token)
        with lock:
            results.append(found)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count((user, "ada@example.com")) == 1
    assert results.count(None) == 11


def test_discard_takes_one_purpose_of_one_user(database: Database) -> None:
    ada = add_user(database)
    bob = add_user(database, "bob@example.com")
    reset = add_token(database, ada, "a" * 64)
    verify = add_token(database, ada, "b" * 64, purpose="verify_email")
    bobs = add_token(database, bob, "c" * 64, email="bob@example.com")
    with database.unit_of_work() as session:
        AccountTokenRepository(session).discard(ada, "reset_password")
    assert use(database, reset) is None
    assert use(database, verify, "verify_email") is not None
    assert use(database, bobs) is not None


def test_addressee_by_normalized_address(database: Database) -> None:
    user = add_user(database, locale="zh-Hans", email_verified=True)
    with database.unit_of_work(read_only=True) as session:
        found = addressee(session, "ada@example.com")
        assert addressee(session, "nobody@example.com") is None
    assert found is not None
    assert found.user_id == user and found.locale == "zh-Hans" and found.email_verified
