"""The bearer hot path's one query (db/users.lookup_for_token). On SQLite it runs on
a plain sqlite3 connection with its own column conversions: it must
answer exactly what the SQLAlchemy Core statement answers, in every state."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from userservice.db.engine import Database
from userservice.db.models import GrantRevocation, User
from userservice.db.refresh_tokens import NewRefreshToken, insert_token, revoke_family
from userservice.db.revoked_tokens import deny
from userservice.db.users import (
    _RECORD_AND_DENIAL,
    TokenKey,
    TokenStanding,
    _record,
)
from userservice.db.users import lookup_for_token as lookup_by_key

CLIENT = "userservice-frontend"


def lookup_for_token(
    db: Database,
    user_id: uuid.UUID,
    jti: str,
    client: str,
    iat: int,
    grant_id: uuid.UUID | None = None,
) -> tuple[object, bool] | None:
    found = lookup_by_key(db, TokenKey(user_id, jti, client, iat, grant_id))
    return (found.user, found.revoked) if found else None


def core_answer(
    db: Database,
    user_id: uuid.UUID,
    jti: str,
    client: str,
    iat: int,
    grant_id: uuid.UUID | None = None,
) -> object:
    params = TokenKey(user_id, jti, client, iat, grant_id).params()
    with db.engine.connect() as conn:
        row = conn.execute(_RECORD_AND_DENIAL, params).first()
    return (_record(tuple(row)), bool(row[9])) if row else None


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.services.accounts.db
    return database


def test_lookup_matches_the_core_statement_in_every_state(app: FastAPI, db: Database) -> None:
    accounts = app.state.services.accounts
    user = accounts.register("lookup@example.com", "a long enough passphrase", "Lookup Ü")
    cases = [
        (user.id, "jti-1", CLIENT, 1000),  # alive
        (user.id, "jti-1", "no-such-client", 1000),  # client gone
        (uuid.uuid4(), "jti-1", CLIENT, 1000),  # user gone
    ]
    for case in cases:
        assert lookup_for_token(db, *case) == core_answer(db, *case)
    found = lookup_for_token(db, *cases[0])
    assert found is not None
    record, revoked = found
    assert (record.id, record.email, record.display_name, revoked) == (
        user.id,
        "lookup@example.com",
        "Lookup Ü",
        False,
    )
    assert record.created_at.tzinfo is not None
    assert lookup_for_token(db, *cases[2]) is None

    with db.unit_of_work() as session:
        deny(session, "jti-1", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
        session.add(GrantRevocation(user_id=user.id, client_id=CLIENT, not_before=2000))
        session.execute(
            update(User).where(User.id == user.id).values(is_active=False, tokens_valid_after=7)
        )
    for case in [
        (user.id, "jti-1", CLIENT, 3000),  # deny-listed
        (user.id, "jti-2", CLIENT, 1000),  # grant withdrawn after issue
        (user.id, "jti-2", CLIENT, 3000),  # issued after the withdrawal
    ]:
        assert lookup_for_token(db, *case) == core_answer(db, *case)
    assert lookup_for_token(db, user.id, "jti-1", CLIENT, 3000)[1] is True  # type: ignore[index]
    assert lookup_for_token(db, user.id, "jti-2", CLIENT, 1000)[1] is True  # type: ignore[index]
    fresh = lookup_for_token(db, user.id, "jti-2", CLIENT, 3000)
    assert fresh is not None
    assert fresh[1] is False
    assert (fresh[0].is_active, fresh[0].tokens_valid_after) == (False, 7)


def test_first_party_and_grant_family_standing(app: FastAPI, db: Database) -> None:
    """The same statement tells first-party tokens apart and ends a token with its
    refresh family (S5), on the raw SQLite path as in SQLAlchemy Core."""
    accounts = app.state.services.accounts
    user = accounts.register("family@example.com", "a long enough passphrase", None)
    family = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    with db.unit_of_work() as session:
        insert_token(
            session.connection(),
            NewRefreshToken("d1", family, user.id, CLIENT, "openid", now, now, None),
        )
    alive = lookup_by_key(db, TokenKey(user.id, "j", CLIENT, 1000, family))
    assert isinstance(alive, TokenStanding)
    assert (alive.revoked, alive.first_party) == (False, True)
    assert lookup_for_token(db, user.id, "j", CLIENT, 1000, family) == core_answer(
        db, user.id, "j", CLIENT, 1000, family
    )
    unknown_family = lookup_by_key(db, TokenKey(user.id, "j", CLIENT, 1000, uuid.uuid4()))
    assert unknown_family is not None and unknown_family.revoked
    with db.unit_of_work() as session:
        revoke_family(session.connection(), family, now)
    dead = lookup_by_key(db, TokenKey(user.id, "j", CLIENT, 1000, family))
    assert dead is not None and dead.revoked
    assert lookup_for_token(db, user.id, "j", CLIENT, 1000, family) == core_answer(
        db, user.id, "j", CLIENT, 1000, family
    )
