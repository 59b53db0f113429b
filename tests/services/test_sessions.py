"""Browser sessions as their user sees and ends them (services/sessions.py over the
sessions repository), on SQLite and PostgreSQL: only the user's own are listed or
ended (L22), nothing listed opens a session, and ending them everywhere ends every
session and token at once (L23)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid

import pytest
from sqlalchemy import select, update

from tests.support.event_loop import run
from tests.support.storage import FRONTEND, add_user, refresh_row
from userservice.db.backend import Database
from userservice.db.models import AuditEvent, BrowserSession, User
from userservice.errors import NotFound
from userservice.records import NewRefreshToken, TokenKey
from userservice.security.secrets import digest, new_token
from userservice.services.sessions import SessionService

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IDLE, ABSOLUTE = 1800, 86400


@pytest.fixture
def sessions(database: Database) -> SessionService:
    return SessionService(database, IDLE, ABSOLUTE)


def _rows(db: Database, user_id: uuid.UUID) -> list[BrowserSession]:
    with db.unit_of_work(read_only=True) as uow:
        return list(uow.scalars(select(BrowserSession).where(BrowserSession.user_id == user_id)))


def _events(db: Database, name: str) -> list[AuditEvent]:
    with db.unit_of_work(read_only=True) as uow:
        return list(uow.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def _refresh_token(db: Database, user_id: uuid.UUID) -> str:
    token, now = new_token(), dt.datetime.now(dt.UTC)
    row = NewRefreshToken(
        digest(token), uuid.uuid4(), user_id, FRONTEND, "openid", now, now + dt.timedelta(days=1)
    )
    run(db, lambda: db.refresh_tokens.insert(row))
    return token


def test_start_keeps_a_handle_the_device_and_the_address(
    database: Database, sessions: SessionService
) -> None:
    ada = add_user(database)
    raw_id = sessions.start(ada, int(time.time()), user_agent=CHROME + "\r\nX: 1", ip="192.0.2.7")
    [row] = _rows(database, ada)
    assert row.id_digest == digest(raw_id)
    assert row.handle and 16 <= len(row.handle) <= 32 and row.handle not in raw_id
    # Control characters go: the header is shown and logged.
    assert row.user_agent == CHROME + "X: 1"
    assert row.ip == "192.0.2.7"
    [event] = _events(database, "session.started")
    assert (event.user_id, event.ip) == (ada, "192.0.2.7")


def test_a_long_user_agent_is_cut_to_the_column(
    database: Database, sessions: SessionService
) -> None:
    ada = add_user(database)
    sessions.start(ada, int(time.time()), user_agent="x" * 5000)
    [row] = _rows(database, ada)
    assert row.user_agent == "x" * 512


def test_only_the_users_own_live_sessions_are_listed_newest_first(
    database: Database, sessions: SessionService
) -> None:
    """L22: Bob's sessions never appear in Ada's list; dead ones appear nowhere."""
    ada, bob = add_user(database), add_user(database, "bob@example.com")
    older = sessions.start(ada, int(time.time()), user_agent=CHROME, ip="192.0.2.1")
    newer = sessions.start(ada, int(time.time()), ip="192.0.2.2")
    idle = sessions.start(ada, int(time.time()))
    sessions.start(bob, int(time.time()), ip="198.51.100.9")
    now = dt.datetime.now(dt.UTC)
    with database.unit_of_work() as uow:
        for raw_id, moment in ((older, now - dt.timedelta(minutes=5)), (newer, now)):
            uow.execute(
                update(BrowserSession)
                .where(BrowserSession.id_digest == digest(raw_id))
                .values(created_at=moment)
            )
        uow.execute(
            update(BrowserSession)
            .where(BrowserSession.id_digest == digest(idle))
            .values(last_seen_at=now - dt.timedelta(seconds=IDLE + 60))
        )
    listed = sessions.active(ada, current_raw_id=older)
    assert [s.ip for s in listed] == ["192.0.2.2", "192.0.2.1"]
    assert [s.current for s in listed] == [False, True]
    assert str(listed[1].device) == "Chrome 120 on Linux"
    assert str(listed[0].device) == "Unknown device"
    assert all(s.expires_at > now for s in listed)


def test_nothing_listed_is_a_secret_or_a_digest(
    database: Database, sessions: SessionService
) -> None:
    """L22: the handle names a session; neither it nor anything else listed is
    its id or the id's digest."""
    ada = add_user(database)
    raw_ids = [sessions.start(ada, int(time.time()), user_agent=CHROME) for _ in range(3)]
    secrets = set(raw_ids) | {row.id_digest for row in _rows(database, ada)}
    for found in sessions.active(ada):
        text = json.dumps(dataclasses.asdict(found), default=str)
        assert not any(secret in text for secret in secrets), text
        assert not any(found.handle in secret for secret in secrets)


def test_sessions_before_the_revocation_mark_are_not_listed(
    database: Database, sessions: SessionService
) -> None:
    ada = add_user(database)
    sessions.start(ada, int(time.time()))
    with database.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == ada).values(tokens_valid_after=2**40))
    assert sessions.active(ada) == []


def test_ending_another_users_session_is_not_found_and_changes_nothing(
    database: Database, sessions: SessionService
) -> None:
    ada, bob = add_user(database), add_user(database, "bob@example.com")
    sessions.start(ada, int(time.time()))
    sessions.start(bob, int(time.time()))
    [bobs] = sessions.active(bob)
    for handle in (bobs.handle, "no-such-handle-0000", "x" * 200, ""):
        with pytest.raises(NotFound):
            sessions.end_by_handle(ada, handle)
    assert len(_rows(database, bob)) == 1 and len(_rows(database, ada)) == 1
    assert _events(database, "session.ended") == []


def test_ending_one_session_ends_only_that_one(
    database: Database, sessions: SessionService
) -> None:
    ada = add_user(database)
    keep = sessions.start(ada, int(time.time()))
    end = sessions.start(ada, int(time.time()))
    handle = next(s.handle for s in sessions.active(ada, end) if s.current)
    sessions.end_by_handle(ada, handle, ip="192.0.2.7")
    assert [row.id_digest for row in _rows(database, ada)] == [digest(keep)]
    [event] = _events(database, "session.ended")
    assert (event.user_id, event.ip) == (ada, "192.0.2.7")
    with pytest.raises(NotFound):
        sessions.end_by_handle(ada, handle)


def test_ending_everything_ends_sessions_refresh_and_access_tokens(
    database: Database, sessions: SessionService
) -> None:
    """L23: one transaction ends every browser session and refresh token, and
    marks every access token issued so far as refused; Bob keeps his."""
    ada, bob = add_user(database), add_user(database, "bob@example.com")
    for _ in range(2):
        sessions.start(ada, int(time.time()))
    sessions.start(bob, int(time.time()))
    adas, bobs = _refresh_token(database, ada), _refresh_token(database, bob)
    issued = int(time.time())
    sessions.end_everywhere(ada, ip="192.0.2.7")
    assert _rows(database, ada) == [] and len(_rows(database, bob)) == 1
    ada_row, bob_row = refresh_row(database, digest(adas)), refresh_row(database, digest(bobs))
    assert ada_row is not None and ada_row.revoked_at is not None
    assert bob_row is not None and bob_row.revoked_at is None
    for user_id, revoked in ((ada, True), (bob, False)):
        key = TokenKey(user_id, new_token(), FRONTEND, issued)
        standing = run(database, lambda key=key: database.users.user_for_token(key))
        assert standing is not None
        assert (issued < standing.user.tokens_valid_after) is revoked
    [event] = _events(database, "sessions.ended_all")
    assert (event.user_id, event.ip, json.loads(event.details)) == (
        ada,
        "192.0.2.7",
        {"sessions": 2},
    )


def test_ending_everything_for_no_such_user_is_not_found(sessions: SessionService) -> None:
    with pytest.raises(NotFound):
        sessions.end_everywhere(uuid.uuid4())


def test_the_own_sign_out_is_recorded(database: Database, sessions: SessionService) -> None:
    ada = add_user(database)
    raw_id = sessions.start(ada, int(time.time()))
    sessions.end(raw_id, ip="192.0.2.7")
    sessions.end(raw_id)  # already gone: nothing more happens
    [event] = _events(database, "session.ended")
    assert (event.user_id, json.loads(event.details)) == (ada, {"how": "signed_out"})
