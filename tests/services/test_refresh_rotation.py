"""Refresh-token rotation (services/refresh_rotation.py over the refresh-token port),
on both backends: what a rotation carries forward, that every refusal changes
nothing, that reuse ends the family (RFC 9700 §4.14.2), that concurrent
redemptions have one winner, and that scopes match exactly."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from tests.support.event_loop import run
from tests.support.storage import (
    FRONTEND,
    add_client,
    add_user,
    refresh_row,
    refresh_rows,
    set_user,
)
from userservice.db.backend import Database
from userservice.db.models import RefreshToken
from userservice.db.users import UserRepository
from userservice.errors import OAuthError
from userservice.records import NewRefreshToken, Rotated, RotationRequest, StoredClient
from userservice.security.secrets import digest, new_token
from userservice.services.refresh_rotation import RefreshRotation, Rotation

IDLE = dt.timedelta(days=30)
GRANTED = "openid profile:write profile"
AUTH_TIME = 1_700_000_000


class Tokens:
    """A user with one refresh token of the first-party client, and the rotation."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rotation = RefreshRotation(db.refresh_tokens, int(IDLE.total_seconds()))
        self.user_id = add_user(db)
        self.family_id = uuid.uuid4()
        self.token = new_token()
        now = dt.datetime.now(dt.UTC)
        self.expires_at = (now + dt.timedelta(days=90)).replace(microsecond=0)
        self.insert(self.token, issued_at=now)

    def insert(self, token: str, **values: Any) -> NewRefreshToken:
        fields: dict[str, Any] = {
            "family_id": self.family_id,
            "user_id": self.user_id,
            "client_id": FRONTEND,
            "scope": GRANTED,
            "issued_at": dt.datetime.now(dt.UTC),
            "expires_at": self.expires_at,
            "auth_time": AUTH_TIME,
        }
        row = NewRefreshToken(digest(token), **(fields | values))
        run(self.db, lambda: self.db.refresh_tokens.insert(row))
        return row

    def client(self, client_id: str = FRONTEND) -> StoredClient:
        found = run(self.db, lambda: self.db.clients.client(client_id))
        assert found is not None
        return found

    def rotate(self, token: str, client_id: str = FRONTEND, scope: str | None = None) -> Rotation:
        client = self.client(client_id)
        return run(self.db, lambda: self.rotation.rotate(token, client, scope))

    def refused(self, token: str, client_id: str = FRONTEND, scope: str | None = None) -> str:
        with pytest.raises(OAuthError) as refusal:
            self.rotate(token, client_id, scope)
        return refusal.value.error

    def stored(self, token: str) -> tuple[int, tuple[object, ...] | None]:
        """Every row, and this token's columns as stored (None: no such row)."""
        row = refresh_row(self.db, digest(token))
        columns = None
        if row is not None:
            columns = (
                row.family_id,
                row.client_id,
                row.scope,
                row.issued_at,
                row.expires_at,
                row.last_used_at,
                row.revoked_at,
                row.auth_time,
            )
        return refresh_rows(self.db), columns


@pytest.fixture
def tokens(database: Database) -> Tokens:
    return Tokens(database)


def test_a_rotation_carries_the_family_scope_expiry_and_auth_time(tokens: Tokens) -> None:
    set_user(tokens.db, tokens.user_id, tokens_valid_after=1_800_000_000)
    rotated = tokens.rotate(tokens.token)
    assert (rotated.family_id, rotated.user_id, rotated.scope, rotated.auth_time) == (
        tokens.family_id,
        tokens.user_id,
        GRANTED,
        AUTH_TIME,
    )
    assert rotated.tokens_valid_after == 1_800_000_000
    retired = refresh_row(tokens.db, digest(tokens.token))
    successor = refresh_row(tokens.db, digest(rotated.refresh_token))
    assert retired is not None and successor is not None
    assert retired.revoked_at is not None and retired.last_used_at == retired.revoked_at
    assert (successor.revoked_at, successor.last_used_at) == (None, None)
    assert (successor.family_id, successor.user_id, successor.client_id) == (
        tokens.family_id,
        tokens.user_id,
        FRONTEND,
    )
    assert (successor.scope, successor.expires_at, successor.auth_time) == (
        GRANTED,
        tokens.expires_at,
        AUTH_TIME,
    )
    assert successor.issued_at == retired.revoked_at  # its idle clock starts now
    assert refresh_rows(tokens.db) == 2


def test_a_narrowed_request_narrows_the_access_token_not_the_family(tokens: Tokens) -> None:
    narrowed = tokens.rotate(tokens.token, scope="profile openid")
    assert narrowed.scope == "openid profile"
    successor = refresh_row(tokens.db, digest(narrowed.refresh_token))
    assert successor is not None and successor.scope == GRANTED
    # A later refresh may ask for the rest of the grant again.
    assert tokens.rotate(narrowed.refresh_token, scope="profile:write").scope == "profile:write"


@pytest.mark.parametrize(
    "refusal", ["expired", "idle", "disabled user", "unknown token", "revoked"]
)
def test_refused_rotations_change_nothing(tokens: Tokens, refusal: str) -> None:
    token = tokens.token
    now = dt.datetime.now(dt.UTC)
    if refusal == "expired":
        token = new_token()
        tokens.insert(token, expires_at=now)
    elif refusal == "idle":
        token = new_token()
        tokens.insert(token, issued_at=now - IDLE)
    elif refusal == "disabled user":
        set_user(tokens.db, tokens.user_id, is_active=False)
    elif refusal == "unknown token":
        token = new_token()
    else:  # RFC 7009: revoked by its own client
        client = tokens.client()
        run(tokens.db, lambda: tokens.rotation.revoke(tokens.token, client))
    before = tokens.stored(token)
    assert tokens.refused(token) == "invalid_grant"
    assert tokens.stored(token) == before


def test_a_deleted_users_token_is_refused(tokens: Tokens) -> None:
    with tokens.db.unit_of_work() as session:
        assert UserRepository(session).delete(tokens.user_id)
    assert tokens.refused(tokens.token) == "invalid_grant"
    assert refresh_rows(tokens.db) == 0  # its tokens went with it (ON DELETE CASCADE)


def test_another_clients_token_is_refused_and_stays_usable(tokens: Tokens) -> None:
    """C7: a client may only redeem its own refresh tokens; a foreign client's
    attempt neither works nor harms the rightful holder."""
    other = add_client(tokens.db, "other-app", scope=GRANTED)
    before = tokens.stored(tokens.token)
    assert tokens.refused(tokens.token, client_id=other) == "invalid_grant"
    assert tokens.stored(tokens.token) == before
    assert tokens.rotate(tokens.token).family_id == tokens.family_id


@pytest.mark.parametrize(
    "requested",
    [
        "openid admin",  # wider than the grant
        "PROFILE",  # scopes are case-sensitive (RFC 6749 §3.3)
        "prof",  # a prefix of a granted scope
        "rofile",  # a suffix of one
        "openid profile:",  # a prefix of "profile:write"
        "%",  # LIKE wildcards match nothing
        "_",
        "profil_",
        "%profile%",
        "\\",
    ],
)
def test_a_scope_beyond_the_grant_is_refused_and_the_token_stays_usable(
    tokens: Tokens, requested: str
) -> None:
    before = tokens.stored(tokens.token)
    assert tokens.refused(tokens.token, scope=requested) == "invalid_scope"
    assert tokens.stored(tokens.token) == before
    # The port's claim refuses it too (not only the service's error message).
    now = dt.datetime.now(dt.UTC)
    request = RotationRequest(
        digest(tokens.token),
        digest(new_token()),
        FRONTEND,
        frozenset(requested.split()),
        now,
        now - IDLE,
    )
    assert run(tokens.db, lambda: tokens.db.refresh_tokens.rotate(request)) is None
    assert tokens.rotate(tokens.token, scope="profile").scope == "profile"


def test_reuse_of_a_retired_token_ends_the_family(tokens: Tokens) -> None:
    """RFC 9700 §4.14.2: a retired token presented again means a copy leaked; the
    family dies, the successor the legitimate holder got included."""
    first = tokens.rotate(tokens.token)
    second = tokens.rotate(first.refresh_token)
    assert tokens.refused(tokens.token) == "invalid_grant"
    for token in (first.refresh_token, second.refresh_token):
        row = refresh_row(tokens.db, digest(token))
        assert row is not None and row.revoked_at is not None
    assert tokens.refused(second.refresh_token) == "invalid_grant"


def test_concurrent_redemptions_have_exactly_one_winner(tokens: Tokens) -> None:
    now = dt.datetime.now(dt.UTC)
    requests = [
        RotationRequest(
            digest(tokens.token), digest(new_token()), FRONTEND, frozenset(), now, now - IDLE
        )
        for _ in range(4)
    ]

    async def at_once() -> list[Rotated | None]:
        return list(await asyncio.gather(*map(tokens.db.refresh_tokens.rotate, requests)))

    results = run(tokens.db, at_once)
    assert sum(result is not None for result in results) == 1
    assert refresh_rows(tokens.db) == 2  # one successor

    client = tokens.client()
    token = new_token()
    tokens.insert(token)

    async def redeem_at_once() -> list[Rotation | BaseException]:
        attempts = (tokens.rotation.rotate(token, client, None) for _ in range(4))
        return list(await asyncio.gather(*attempts, return_exceptions=True))

    outcomes = run(tokens.db, redeem_at_once)
    assert sum(isinstance(outcome, Rotation) for outcome in outcomes) == 1
    assert all(
        isinstance(outcome, Rotation)
        or (isinstance(outcome, OAuthError) and outcome.error == "invalid_grant")
        for outcome in outcomes
    )


def test_the_insert_is_idempotent(tokens: Tokens) -> None:
    """PostgreSQL's event-loop reader sends a statement again on a new connection
    when a reused one was dead, and the first attempt may have committed: the same
    row twice is no error."""
    token = new_token()
    row = tokens.insert(token)
    run(tokens.db, lambda: tokens.db.refresh_tokens.insert(row))
    assert refresh_rows(tokens.db) == 2
    assert tokens.rotate(token).family_id == tokens.family_id


def test_the_port_stores_what_the_orm_stores(tokens: Tokens) -> None:
    token = new_token()
    row = tokens.insert(token, issued_at=dt.datetime(2026, 11, 24, 10, 30, 15, 123456, dt.UTC))
    with tokens.db.unit_of_work() as session:
        values = {name: getattr(row, name) for name in NewRefreshToken.__dataclass_fields__}
        session.add(RefreshToken(**(values | {"digest": "by-the-orm"})))
    by_port, by_orm = tokens.stored(token)[1], refresh_row(tokens.db, "by-the-orm")
    assert by_orm is not None and by_port is not None
    assert by_port[3] == dt.datetime(2026, 11, 24, 10, 30, 15, 123456, dt.UTC)
    assert by_port == (
        by_orm.family_id,
        by_orm.client_id,
        by_orm.scope,
        by_orm.issued_at,
        by_orm.expires_at,
        by_orm.last_used_at,
        by_orm.revoked_at,
        by_orm.auth_time,
    )
