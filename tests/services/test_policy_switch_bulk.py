"""M13 (and M8): the switch of the sign-in rule signs out every covered account
without a second factor in a constant number of statements, with exactly the
effects of ending one account's sessions and tokens after a factor change: browser
sessions gone, refresh families revoked, unredeemed codes discarded, access tokens
refused by the bearer check through the revocation mark (which strictly
increases), one `policy.mfa_signed_out` event per account with the number of
sessions it lost. Accounts with a factor (app or passkey) and inactive ones are
untouched. Many accounts, over the real application on SQLite and PostgreSQL;
the statements are counted on the engine itself."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select, text

from tests.support.accounts import bearer
from tests.support.stored_passkeys import add_passkey
from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.db.models import (
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    RefreshToken,
    TotpFactor,
    User,
)
from userservice.services.access_tokens import Grant
from userservice.wiring import Services

ROOT = uuid.UUID(int=0)


def _users(services: Services, count: int, **columns: Any) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    if not ids:
        return ids
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(
            insert(User),
            [
                {
                    "id": user_id,
                    "email": f"{user_id.hex}@example.com",
                    "password_hash": "x",
                    "email_verified": True,
                    **columns,
                }
                for user_id in ids
            ],
        )
    return ids


def _held(client: TestClient, services: Services, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Per account: two browser sessions, a token pair, an unredeemed code."""
    now = int(time.time())
    sessions = {
        user_id: [services.sessions.start(user_id, now) for _ in range(2)] for user_id in ids
    }

    async def issue() -> dict[uuid.UUID, Any]:
        registered = await services.clients.registration(FIRST_PARTY_CLIENT_ID)
        assert registered is not None
        return {
            user_id: await services.tokens.issue(
                services.accounts.get(user_id), registered, "openid profile", Grant(now)
            )
            for user_id in ids
        }

    assert client.portal is not None
    tokens = client.portal.call(issue)
    stamp = dt.datetime.now(dt.UTC)
    with services.accounts.db.unit_of_work() as uow:
        uow.add_all(
            AuthorizationCode(
                digest=uuid.uuid4().hex,
                client_id=FIRST_PARTY_CLIENT_ID,
                user_id=user_id,
                redirect_uri="https://testserver/cb",
                code_challenge="x" * 43,
                code_challenge_method="S256",
                auth_time=now,
                created_at=stamp,
                expires_at=stamp + dt.timedelta(minutes=1),
            )
            for user_id in ids
        )
    return {user_id: (sessions[user_id], tokens[user_id]) for user_id in ids}


def _alive(client: TestClient, services: Services, held: Any) -> tuple[bool, bool, bool]:
    """(either browser session, the access token, the refresh token) still good."""
    sessions, tokens = held
    assert client.portal is not None
    session = any(client.portal.call(services.sessions.current, one) for one in sessions)
    access = client.get("/users/me", headers=bearer(tokens.access_token))
    assert access.status_code in (200, 401), access.text
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
    )
    assert refreshed.status_code in (200, 400), refreshed.text
    return session, access.status_code == 200, refreshed.status_code == 200


def _count(services: Services, model: Any, ids: list[uuid.UUID], *extra: Any) -> int:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        found = uow.scalar(
            select(func.count()).select_from(model).where(model.user_id.in_(ids), *extra)
        )
    return int(found or 0)


def _marks(services: Services, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(select(User.id, User.tokens_valid_after).where(User.id.in_(ids)))
        return {row[0]: int(row[1]) for row in rows}


def _events(services: Services) -> list[tuple[uuid.UUID, uuid.UUID | None, dict[str, Any]]]:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.user_id, AuditEvent.actor_id, AuditEvent.details).where(
                AuditEvent.event == "policy.mfa_signed_out"
            )
        ).all()
    return [(row[0], row[1], json.loads(row[2])) for row in rows]


@contextmanager
def _statements(services: Services) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = getattr(services.accounts.db, "engine")  # noqa: B009 (the SQLAlchemy backend's)

    def counted(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", counted)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", counted)


def test_m13_the_switch_signs_out_fifty_accounts_at_once_and_no_other(
    client: TestClient, services: Services
) -> None:
    plain = _users(services, 50)
    admins = _users(services, 5, is_admin=True)
    with_app, with_key = _users(services, 5), _users(services, 5)
    inactive = _users(services, 5, is_active=False)
    with services.accounts.db.unit_of_work() as uow:
        uow.add_all(
            TotpFactor(
                user_id=user_id,
                secret="s",
                created_at=dt.datetime.now(dt.UTC),
                confirmed_at=dt.datetime.now(dt.UTC),
            )
            for user_id in with_app
        )
    for user_id in with_key:
        add_passkey(services, user_id)
    covered, kept = plain + admins, with_app + with_key + inactive
    held = _held(client, services, covered + kept)
    # A mark ahead of the clock (a revocation earlier in this second, or
    # a clock a little behind) still rises, strictly.
    ahead = int(time.time()) + 100
    with services.accounts.db.unit_of_work() as uow:
        uow.get_one(User, plain[0]).tokens_valid_after = ahead
    marks_before = _marks(services, covered + kept)

    services.mfa_policy.set_required_for("all", actor_id=ROOT, ip="192.0.2.7", via="test")

    assert _count(services, BrowserSession, covered) == 0
    assert _count(services, RefreshToken, covered, RefreshToken.revoked_at.is_(None)) == 0
    assert _count(services, AuthorizationCode, covered) == 0
    for user_id in covered:
        assert _alive(client, services, held[user_id]) == (False, False, False), user_id
    marks = _marks(services, covered + kept)
    assert marks[plain[0]] == ahead + 1
    assert all(marks[user_id] > marks_before[user_id] for user_id in covered)
    # Untouched: the accounts with a factor, and the inactive ones (their rows
    # are not even read: the disabling revoked them already).
    assert {user_id: marks[user_id] for user_id in kept} == {
        user_id: marks_before[user_id] for user_id in kept
    }
    assert _count(services, BrowserSession, kept) == 2 * len(kept)
    assert _count(services, RefreshToken, kept, RefreshToken.revoked_at.is_(None)) == len(kept)
    assert _count(services, AuthorizationCode, kept) == len(kept)
    for user_id in with_app + with_key:
        assert _alive(client, services, held[user_id]) == (True, True, True), user_id
    events = _events(services)
    assert sorted(user for user, _actor, _details in events) == sorted(covered)
    assert all(actor == ROOT for _user, actor, _details in events)
    assert all(
        details == {"sessions": 2, "rule": "all", "via": "test"} for *_ids, details in events
    )


def test_m8_admins_signs_out_only_the_administrators_without_a_factor(
    client: TestClient, services: Services
) -> None:
    plain, admins = _users(services, 10), _users(services, 10, is_admin=True)
    held = _held(client, services, plain + admins)
    services.mfa_policy.set_required_for("admins", actor_id=None, ip=None)
    assert _count(services, BrowserSession, admins) == 0
    assert _count(services, BrowserSession, plain) == 2 * len(plain)
    assert all(_alive(client, services, held[user_id]) == (True, True, True) for user_id in plain)
    events = _events(services)
    assert sorted(user for user, _actor, _details in events) == sorted(admins)
    assert {details["rule"] for *_ids, details in events} == {"admins"}


def test_m13_the_number_of_statements_does_not_grow_with_the_accounts(
    client: TestClient, services: Services
) -> None:
    counts = []
    first = _users(services, 5)
    _held(client, services, first)
    for more in (0, 45):
        # The same five again (still without a factor), with 45 more the second time.
        _held(client, services, _users(services, more))
        services.mfa_policy.set_required_for("none", actor_id=None, ip=None)
        with _statements(services) as seen:
            services.mfa_policy.set_required_for("all", actor_id=None, ip=None)
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[0] < 20
    events = _events(services)
    # Five the first time, fifty the second, each with its two sessions, then none.
    assert len(events) == 55
    assert sorted(details["sessions"] for *_ids, details in events) == [0] * 5 + [2] * 50


def test_m8_one_account_s_reset_takes_the_same_path_and_its_mark_rises_strictly(
    client: TestClient, services: Services
) -> None:
    """An administrator's reset of one account ends its sessions and tokens by the
    same statements as the switch, for one account: the others keep theirs."""
    target, other = _users(services, 2)
    add_passkey(services, target)
    held = _held(client, services, [target, other])
    ahead = int(time.time()) + 100
    with services.accounts.db.unit_of_work() as uow:
        uow.get_one(User, target).tokens_valid_after = ahead
    services.factors.reset(target, actor_id=ROOT, ip=None, via="test")
    assert _marks(services, [target])[target] == ahead + 1
    assert _alive(client, services, held[target]) == (False, False, False)
    assert _count(services, AuthorizationCode, [target]) == 0
    assert _alive(client, services, held[other]) == (True, True, True)
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        details = uow.scalar(
            select(AuditEvent.details).where(
                AuditEvent.event == "factors.reset", AuditEvent.user_id == target
            )
        )
    assert details is not None and json.loads(details)["sessions"] == 2


def _waiting_on_a_lock(services: Services, backend: str) -> bool:
    if backend != "postgresql":
        return True  # SQLite: the switch waits for the one write turn
    engine = getattr(services.accounts.db, "engine")  # noqa: B009 (as above)
    with engine.connect() as connection:
        waiting = connection.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        )
    return bool(waiting)


def test_m13_an_app_confirmed_while_the_switch_waits_keeps_its_sessions_and_no_event(
    client: TestClient, services: Services, backend: str
) -> None:
    """An enrolment holding the account's row when the switch comes: the switch
    waits for it, then leaves that account alone (it has a factor by then), and
    its event trail says so; the other accounts are signed out as ever."""
    enrolling, other = _users(services, 2)
    held = _held(client, services, [enrolling, other])
    switch = threading.Thread(
        target=services.mfa_policy.set_required_for,
        args=("all",),
        kwargs={"actor_id": None, "ip": None},
    )
    with services.accounts.db.unit_of_work() as uow:
        # As services/factors.py confirms an app: the account's row locked first.
        uow.scalar(select(User).where(User.id == enrolling).with_for_update())
        stamp = dt.datetime.now(dt.UTC)
        uow.add(TotpFactor(user_id=enrolling, secret="s", created_at=stamp, confirmed_at=stamp))
        uow.flush()
        switch.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(services, backend) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert switch.is_alive()
    switch.join(30)
    assert not switch.is_alive()
    assert services.mfa_policy.required_for() == "all"
    assert _alive(client, services, held[enrolling]) == (True, True, True)
    assert _alive(client, services, held[other]) == (False, False, False)
    assert [user for user, _actor, _details in _events(services)] == [other]
