"""The user search port (db/user_search.py UserSearch), the admin list's read. Through
either backend (SQL compiled once per filter shape; SQLite runs a scan on a
connection of its own in a worker thread) it must give exactly the pages that the
same statement gives through an ORM Session, with LIKE metacharacters matching
literally."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.dialects import sqlite

from tests.support.event_loop import run
from tests.support.storage import session_page as orm_page
from userservice.db.backend import Database
from userservice.db.models import User
from userservice.db.postgres.backend import compile_pg
from userservice.db.sqlite.compiled import compile_sqlite
from userservice.db.user_search import _BY_SHAPE, like_escape
from userservice.records import UserRecord

# (email, display name): LIKE metacharacters, near-misses that a wildcard would
# match, no name, non-ASCII, upper case.
PEOPLE = [
    ("per%cent@example.com", "100% Sure"),
    ("perxcent@example.com", "100x Sure"),
    ("under_score@example.com", "snake_case"),
    ("underxscore@example.com", "snakexcase"),
    ("back\\slash@example.com", "Back\\Slash"),
    ("slash/ed@example.com", "Slash/ed"),
    ("slashxed@example.com", "Slash//ed"),
    ("none@example.com", None),
    ("zoe@example.com", "Zoë 🎉"),
    ("jp@example.com", "山田 太郎"),
    ("upper@example.com", "GRACE Hopper"),
    *((f"user{i:02d}@example.com", f"Filler {i}") for i in range(25)),
]
NEEDLES = ["%", "_", "\\", "/", "//", "r%c", "r_s", "x", "X", "ë", "山田", "grace h", "1", "@"]


CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def created_at(index: int) -> dt.datetime:
    # Whole seconds too: ISO text without a fraction on SQLite.
    return CREATED if index % 2 else CREATED.replace(microsecond=0)


@pytest.fixture
def db(database: Database) -> Database:
    with database.unit_of_work() as session:
        for index, (email, name) in enumerate(PEOPLE):
            session.add(
                User(
                    id=uuid.uuid4(),
                    email=email,
                    display_name=name,
                    password_hash="x",
                    is_active=index % 2 == 0,
                    is_admin=index % 3 == 0,
                    email_verified=index % 5 == 0,
                    created_at=created_at(index),
                    updated_at=CREATED + dt.timedelta(days=index),
                    tokens_valid_after=index,
                )
            )
    return database


def session_page(
    db: Database, email: str | None, name: str | None, after: str | None, limit: int
) -> list[UserRecord]:
    return orm_page(db, email=email, name=name, after=after, limit=limit)


@pytest.mark.parametrize(
    "needle", ["%", "_", "\\", "/", "//", "a%", "%_\\/", "100% _x_ \\/", "", "ÄÖ"]
)
def test_like_escape_binds_what_autoescape_binds(needle: str) -> None:
    expression = User.email.contains(needle, autoescape=True)
    bound = expression.compile(dialect=sqlite.dialect()).params
    assert list(bound.values()) == [like_escape(needle)]


def test_limit_and_every_filter_are_bound_parameters() -> None:
    """One compiled statement per shape serves every value: nothing a caller sends
    is spliced into the SQL."""
    assert len(_BY_SHAPE) == 8
    for (email, name, after), statement in _BY_SHAPE.items():
        sql = compile_pg(statement.sql)
        assert "LIMIT %(limit)s" in sql
        assert ("%(email)s" in sql) is email
        assert ("%(name)s" in sql) is name
        assert ("%(after_email)s" in sql) is after
        assert sql.count("ESCAPE '/'") == email + name
        compiled = compile_sqlite(statement.sql)
        assert "LIMIT :limit OFFSET :param_1" in compiled.sql
        assert (":email" in compiled.sql) is email
        wanted = ("email",) * email + ("name",) * name + ("after_email",) * after
        assert compiled.names == (*wanted, "limit", "param_1")
        assert compiled.defaults == {"param_1": 0}
    assert "lower(users.display_name) LIKE" in compile_pg(_BY_SHAPE[False, True, False].sql)


def test_every_filter_shape_gives_the_session_paths_page(db: Database) -> None:
    afters = [None, "", "m", "per%cent@example.com", "user12@example.com", "\U0010ffff"]
    cases = [
        (email, name, after, limit)
        for email in (None, "", "x", "r%c", "@EXAMPLE")
        for name in (None, "", "x", "_", "ë")
        for after in afters
        for limit in (1, 3, 200)
    ]

    async def pages() -> list[list[UserRecord]]:
        found = []
        for email, name, after, limit in cases:
            lowered = email.lower() if email else email  # as the service does
            page = await db.user_search.page(
                email=lowered, name=name, after_email=after, limit=limit
            )
            found.append(page)
        return found

    got = run(db, pages)
    for case, page in zip(cases, got, strict=True):
        email, name, after, limit = case
        lowered = email.lower() if email else email
        assert page == session_page(db, lowered, name, after, limit), case
    everyone = run(
        db, lambda: db.user_search.page(email=None, name=None, after_email=None, limit=200)
    )
    assert len(everyone) == len(PEOPLE)
    for record in everyone:
        assert isinstance(record.id, uuid.UUID)
        assert all(type(flag) is bool for flag in (record.is_active, record.is_admin))
        assert type(record.email_verified) is bool and type(record.tokens_valid_after) is int
        assert record.created_at.tzinfo is not None and record.updated_at.tzinfo is not None
    by_email = {record.email: record for record in everyone}
    for index, (email, name) in enumerate(PEOPLE):
        record = by_email[email]
        assert record.display_name == name
        assert (record.created_at, record.updated_at) == (
            created_at(index),
            CREATED + dt.timedelta(days=index),
        )
        assert (record.is_active, record.is_admin, record.email_verified) == (
            index % 2 == 0,
            index % 3 == 0,
            index % 5 == 0,
        )
        assert record.tokens_valid_after == index


@pytest.mark.parametrize("needle", NEEDLES)
@pytest.mark.parametrize("field", ["email", "name"])
def test_filters_match_substrings_literally(db: Database, field: str, needle: str) -> None:
    email = needle.lower() if field == "email" else None
    name = needle if field == "name" else None
    found = run(
        db, lambda: db.user_search.page(email=email, name=name, after_email=None, limit=200)
    )
    if field == "email":
        expected = {e for e, _ in PEOPLE if needle.lower() in e}
    else:
        expected = {e for e, n in PEOPLE if n is not None and needle.lower() in n.lower()}
    assert {record.email for record in found} == expected
    assert found == session_page(db, email, name, None, 200)


def test_following_the_last_email_walks_everyone_once_in_order(db: Database) -> None:
    expected = [record.email for record in session_page(db, None, None, None, 200)]

    async def walk() -> tuple[list[str], int]:
        walked: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            page = await db.user_search.page(email=None, name=None, after_email=after, limit=4)
            pages += 1
            walked.extend(record.email for record in page)
            if len(page) < 4:
                return walked, pages
            after = page[-1].email

    walked, pages = run(db, walk)
    assert walked == expected
    assert pages == len(expected) // 4 + 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_scans_run_off_the_event_loop(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A substring filter may scan the whole table (0.1-0.4 s at 1M users): never on
    the loop's thread. Keyset-only pages are index ranges: inline."""
    threads: list[int] = []
    private_reader = db._private_reader  # type: ignore[attr-defined]

    def spy() -> AbstractContextManager[sqlite3.Connection]:
        threads.append(threading.get_ident())
        return private_reader()  # type: ignore[no-any-return]

    monkeypatch.setattr(db, "_private_reader", spy)

    async def read(email: str | None, name: str | None) -> tuple[int, int]:
        page = await db.user_search.page(email=email, name=name, after_email=None, limit=200)
        return threading.get_ident(), len(page)

    loop_thread, found = run(db, lambda: read("zoe", None))
    assert found == 1 and len(threads) == 1 and threads[0] != loop_thread
    run(db, lambda: read(None, "ë"))
    assert len(threads) == 2
    _, everyone = run(db, lambda: read(None, None))
    assert everyone == len(PEOPLE) and len(threads) == 2
