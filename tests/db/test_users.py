"""The users port's hot reads (db/users.py UserReads): the bearer check's one
statement and the login's credentials read. Each backend runs them its own way
(SQLite: a plain sqlite3 connection and the codec; PostgreSQL: batched on the
event loop); both must answer exactly what the same statement answers through an
ORM Session, in every state a token can be in."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from tests.support.event_loop import run
from tests.support.storage import FRONTEND, add_client, add_user, set_user
from userservice.db.backend import Database
from userservice.db.models import GrantRevocation
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.db.revoked_tokens import deny
from userservice.db.users import CREDENTIALS, TOKEN_STANDING, UserRepository, _record
from userservice.records import NewRefreshToken, TokenKey, TokenStanding, UserRecord

NOW = dt.datetime.now(dt.UTC)
THIRD_PARTY = "third-party-app"


def through_session(session: Session, key: TokenKey) -> TokenStanding | None:
    params = {
        "user_id": key.user_id,
        "jti": key.jti,
        "client_id": key.client_id,
        "iat": key.iat,
        "grant_id": key.grant_id,
    }
    row = session.execute(TOKEN_STANDING.sql, params).first()
    return None if row is None else TokenStanding(_record(tuple(row)), bool(row[9]), bool(row[10]))


def standings(db: Database, keys: list[TokenKey]) -> list[TokenStanding | None]:
    async def read() -> list[TokenStanding | None]:
        return [await db.users.user_for_token(key) for key in keys]

    return run(db, read)


def assert_port_matches_session(db: Database, keys: list[TokenKey]) -> list[TokenStanding | None]:
    found = standings(db, keys)
    with db.unit_of_work(read_only=True) as session:
        expected = [through_session(session, key) for key in keys]
    assert found == expected
    return found


def test_token_standing_matches_the_session_in_every_state(database: Database) -> None:
    user = add_user(database, "lookup@example.com", display_name="Lookup Ü")
    add_client(database, THIRD_PARTY)
    family = uuid.uuid4()
    with database.unit_of_work() as session:
        RefreshTokenRepository(session).insert(
            NewRefreshToken("d1", family, user, FRONTEND, "openid", NOW, NOW, None)
        )
    alive = TokenKey(user, "jti-1", FRONTEND, 1000)
    third_party = TokenKey(user, "jti-1", THIRD_PARTY, 1000)
    of_family = TokenKey(user, "j", FRONTEND, 1000, family)
    keys = [
        alive,
        third_party,
        of_family,
        TokenKey(user, "jti-1", "no-such-client", 1000),  # its client is gone
        TokenKey(uuid.uuid4(), "jti-1", FRONTEND, 1000),  # its user is gone
        TokenKey(user, "j", FRONTEND, 1000, uuid.uuid4()),  # an unknown family (S5)
    ]
    found = assert_port_matches_session(database, keys)
    assert [None if item is None else (item.revoked, item.first_party) for item in found] == [
        (False, True),
        (False, False),
        (False, True),
        (True, False),
        None,
        (True, True),
    ]
    first = found[0]
    assert first is not None
    assert (first.user.id, first.user.email, first.user.display_name) == (
        user,
        "lookup@example.com",
        "Lookup Ü",
    )
    assert first.user.created_at.tzinfo is not None

    with database.unit_of_work() as session:
        deny(session, "jti-1", NOW + dt.timedelta(minutes=5))
        session.add(GrantRevocation(user_id=user, client_id=THIRD_PARTY, not_before=2000))
        RefreshTokenRepository(session).revoke_family(family, NOW)
    set_user(database, user, is_active=False, tokens_valid_after=7)
    later = [
        TokenKey(user, "jti-1", FRONTEND, 3000),  # deny-listed
        TokenKey(user, "jti-2", THIRD_PARTY, 1000),  # its grant withdrawn after issue
        TokenKey(user, "jti-2", THIRD_PARTY, 3000),  # issued after the withdrawal
        TokenKey(user, "jti-2", FRONTEND, 1000),  # a withdrawal of another client's grant
        of_family,  # its refresh family revoked (S5)
    ]
    found = assert_port_matches_session(database, later)
    assert [item is not None and item.revoked for item in found] == [True, True, False, False, True]
    fresh = found[2]
    assert fresh is not None
    assert (fresh.user.is_active, fresh.user.tokens_valid_after) == (False, 7)


def test_credentials_match_the_session(database: Database) -> None:
    user = add_user(database, "Mixed.Case@example.com", display_name=None)

    async def read() -> list[tuple[UserRecord, str] | None]:
        return [
            await database.users.credentials(email)
            for email in ("Mixed.Case@example.com", "mixed.case@example.com", "nobody@example.com")
        ]

    found = run(database, read)
    with database.unit_of_work(read_only=True) as session:
        users = UserRepository(session)
        expected = [
            users.credentials(email)
            for email in ("Mixed.Case@example.com", "mixed.case@example.com", "nobody@example.com")
        ]
        row = session.execute(CREDENTIALS.sql, {"email": "Mixed.Case@example.com"}).one()
    assert found == expected
    assert found[0] is not None and found[1] is None and found[2] is None
    record, password_hash = found[0]
    assert (record.id, password_hash) == (user, row[9])
