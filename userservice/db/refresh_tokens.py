"""Refresh tokens, stored only as SHA-256 digests: issue, rotate, inspect, revoke.

The rotation's rules are the claim's WHERE (one conditional UPDATE ... RETURNING),
written once here; each backend runs the claim and the successor's insert
atomically its own way (db/statement.py Succession). Of concurrent redemptions
exactly one claim matches (the UPDATE takes the row's lock before it reads), and a
refused claim changes nothing: an expired, foreign or over-scoped attempt retires
nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, fields
from typing import Any, cast

from sqlalchemy import Boolean, Table, bindparam, literal_column, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Label

from userservice.db.models import RefreshToken, User
from userservice.db.statement import Runner, Statement, Succession
from userservice.records import NewRefreshToken, RefreshState, Rotated, RotationRequest

_TOKENS = cast(Table, RefreshToken.__table__)
_NEW_COLUMNS = tuple(field.name for field in fields(NewRefreshToken))
_USERS = cast(Table, User.__table__)


class ScopeCovers(ColumnElement[bool]):
    """The space-separated `granted` holds every scope of `requested` (a JSON array
    of scope tokens): a refresh may narrow the grant, never widen it (RFC 6749 §6).
    Scopes are compared exactly (case-sensitive, RFC 6749 §3.3), never by LIKE."""

    type = Boolean()
    inherit_cache = True

    def __init__(self, granted: ColumnElement[Any], requested: ColumnElement[Any]) -> None:
        self.granted = granted
        self.requested = requested


@compiles(ScopeCovers, "postgresql")
def _covers_pg(element: ScopeCovers, compiler: SQLCompiler, **kw: Any) -> str:
    granted, requested = (
        compiler.process(element.granted, **kw),
        compiler.process(element.requested, **kw),
    )
    return (
        f"string_to_array({granted}, ' ') @> "
        f"ARRAY(SELECT json_array_elements_text(CAST({requested} AS JSON)))"
    )


@compiles(ScopeCovers, "sqlite")
def _covers_sqlite(element: ScopeCovers, compiler: SQLCompiler, **kw: Any) -> str:
    granted, requested = (
        compiler.process(element.granted, **kw),
        compiler.process(element.requested, **kw),
    )
    return (
        f"NOT EXISTS (SELECT 1 FROM json_each({requested}) AS wanted"  # noqa: S608 (our SQL)
        f" WHERE instr(' ' || {granted} || ' ', ' ' || wanted.value || ' ') = 0)"
    )


def _owner(name: str) -> Label[Any]:
    # RETURNING may hold subqueries (SQLite >= 3.35, PostgreSQL): the owner's
    # standing comes back with the claim itself.
    return (
        select(_USERS.c[name])
        .where(_USERS.c.id == _TOKENS.c.user_id)
        .scalar_subquery()
        .label(f"user_{name}")
    )


_CLAIM = (
    update(_TOKENS)
    .where(
        _TOKENS.c.digest == bindparam("token_digest"),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.client_id == bindparam("client_id"),  # C7: only its own client
        _TOKENS.c.expires_at > bindparam("now"),
        _TOKENS.c.issued_at > bindparam("idle_cutoff"),
        # Most refreshes ask for no narrowing: then no JSON is parsed at all.
        or_(
            bindparam("requested") == literal_column("'[]'"),
            ScopeCovers(_TOKENS.c.scope, bindparam("requested")),
        ),
        select(_USERS.c.id)
        .where(_USERS.c.id == _TOKENS.c.user_id, _USERS.c.is_active == true())
        .exists(),
    )
    .values(revoked_at=bindparam("now"), last_used_at=bindparam("now"))
    .returning(
        _TOKENS.c.family_id,
        _TOKENS.c.user_id,
        _TOKENS.c.client_id,
        _TOKENS.c.scope,
        _TOKENS.c.expires_at,
        _TOKENS.c.auth_time,
        _owner("tokens_valid_after"),
        _TOKENS.c.amr,
    )
)
# The successor keeps the family's grant (a narrowed scope is for the access token
# only, so a later refresh may ask for the rest again), expiry, auth_time and amr
# (M5: a refresh is no new login, so it never says more or less about it).
ROTATION = Succession(
    claim=_CLAIM,
    table=_TOKENS,
    carried=("family_id", "user_id", "client_id", "scope", "expires_at", "auth_time", "amr"),
    fresh={"digest": "successor_digest", "issued_at": "now"},
)
# ON CONFLICT DO NOTHING: PostgreSQL's event-loop reader runs a statement once more
# on a new connection when a reused one turns out dead, and the first attempt may
# have committed; the digest is 256 random bits, so a row already there can only
# be this one. (SQLite understands the same clause.)
_INSERT = Statement(
    upsert(_TOKENS)
    .values({name: bindparam(name, type_=_TOKENS.c[name].type) for name in _NEW_COLUMNS})
    .on_conflict_do_nothing(index_elements=[_TOKENS.c.digest])
)
_STATE = Statement(
    select(
        _TOKENS.c.family_id,
        _TOKENS.c.user_id,
        _TOKENS.c.client_id,
        _TOKENS.c.scope,
        _TOKENS.c.issued_at,
        _TOKENS.c.expires_at,
        _TOKENS.c.revoked_at.is_not(None),
    ).where(_TOKENS.c.digest == bindparam("token_digest"))
)
_REVOKE_FAMILY = Statement(
    update(_TOKENS)
    .where(_TOKENS.c.family_id == bindparam("family", type_=_TOKENS.c.family_id.type))
    .where(_TOKENS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now", type_=_TOKENS.c.revoked_at.type))
)


class RefreshTokens:
    """The refresh-token port, written once for every backend."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def insert(self, token: NewRefreshToken) -> None:
        await self._db.write(_INSERT, asdict(token))

    async def rotate(self, request: RotationRequest) -> Rotated | None:
        """The rotation, committed; None if refused (nothing changed)."""
        row = await self._db.succeed(
            ROTATION,
            {
                "token_digest": request.token_digest,
                "successor_digest": request.successor_digest,
                "client_id": request.client_id,
                "requested": json.dumps(sorted(request.requested)),
                "now": request.now,
                "idle_cutoff": request.idle_cutoff,
            },
        )
        if row is None:
            return None
        family_id, user_id, _client, scope, _expires, auth_time, valid_after, amr = row
        return Rotated(family_id, user_id, scope, valid_after or 0, auth_time, amr)

    async def state(self, token_digest: str) -> RefreshState | None:
        row = await self._db.fetch_one(_STATE, {"token_digest": token_digest})
        if row is None:
            return None
        family_id, user_id, client_id, scope, issued_at, expires_at, revoked = row
        return RefreshState(family_id, user_id, client_id, scope, issued_at, expires_at, revoked)

    async def revoke_family(self, family_id: uuid.UUID, now: dt.datetime) -> None:
        await self._db.write(_REVOKE_FAMILY, {"family": family_id, "now": now})


class RefreshTokenRepository:
    """Revocations inside a unit of work (grant withdrawal, account changes)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, token: NewRefreshToken) -> None:
        self.session.execute(_INSERT.sql, asdict(token))

    def revoke_family(self, family_id: uuid.UUID, now: dt.datetime) -> None:
        self.session.execute(_REVOKE_FAMILY.sql, {"family": family_id, "now": now})

    def revoke_all_for_user(self, user_id: uuid.UUID, now: dt.datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_for_client(self, user_id: uuid.UUID, client_id: str, now: dt.datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.client_id == client_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
