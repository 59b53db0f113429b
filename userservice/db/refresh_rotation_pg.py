"""Refresh rotation on PostgreSQL in one statement.

A data-modifying CTE retires the presented token and inserts its successor
atomically, in one autocommit round trip on the event loop, instead of BEGIN,
claim, insert and COMMIT from a worker thread (four round trips and a thread hop).
Every refusal is part of the claim's WHERE, so a refused token is left untouched
(there is no claim to roll back); the caller then learns the precise reason, and
handles reuse, from the full rotation (refresh_tokens.claim_for_rotation)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    DateTime,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from userservice.db.engine import Database
from userservice.db.models import RefreshToken, User
from userservice.db.refresh_tokens import SUCCESSOR_COLUMNS, owner_column

_TOKENS = cast(Table, RefreshToken.__table__)
_USERS = cast(Table, User.__table__)


@dataclass(frozen=True, slots=True)
class Rotated:
    """A rotation that happened: the retired token's family, owner and grant."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    scope: str
    tokens_valid_after: int
    auth_time: int | None


_PG_CLAIMED = (
    update(_TOKENS)
    .where(
        _TOKENS.c.digest == bindparam("token_digest"),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.client_id == bindparam("client_id"),  # C7: only its own client
        _TOKENS.c.expires_at > bindparam("now"),
        _TOKENS.c.issued_at > bindparam("idle_cutoff"),
        # A refresh may narrow the grant, never widen it (RFC 6749 §6).
        func.string_to_array(_TOKENS.c.scope, literal_column("' '"), type_=ARRAY(Text)).contains(
            bindparam("requested", type_=ARRAY(Text))
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
        owner_column("tokens_valid_after"),
        _TOKENS.c.auth_time,
    )
    .cte("claimed")
)
_PG_SUCCESSOR = (
    insert(_TOKENS)
    .from_select(
        list(SUCCESSOR_COLUMNS),
        select(
            bindparam("successor_digest", type_=String),
            _PG_CLAIMED.c.family_id,
            _PG_CLAIMED.c.user_id,
            _PG_CLAIMED.c.client_id,
            # The family keeps its grant; a narrowed scope is for the access token only.
            _PG_CLAIMED.c.scope,
            bindparam("now", type_=DateTime(timezone=True)),
            _PG_CLAIMED.c.expires_at,
            _PG_CLAIMED.c.auth_time,
        ),
    )
    .cte("successor")
)
_PG_ROTATE = (
    select(
        _PG_CLAIMED.c.family_id,
        _PG_CLAIMED.c.user_id,
        _PG_CLAIMED.c.scope,
        _PG_CLAIMED.c.user_tokens_valid_after,
        _PG_CLAIMED.c.auth_time,
    )
    .add_cte(_PG_SUCCESSOR)
    .compile(dialect=postgresql_psycopg.dialect())  # type: ignore[no-untyped-call]
    .string
)


async def rotate_pg(
    db: Database,
    *,
    token_digest: str,
    successor_digest: str,
    client_id: str,
    requested: list[str],
    now: dt.datetime,
    idle_cutoff: dt.datetime,
) -> Rotated | None:
    """Retire an active token and insert its successor (PostgreSQL, one statement);
    None if it was refused for any reason, with nothing changed."""
    rows = await db.pg_read(
        _PG_ROTATE,
        {
            "token_digest": token_digest,
            "successor_digest": successor_digest,
            "client_id": client_id,
            "requested": requested,
            "now": now,
            "idle_cutoff": idle_cutoff,
        },
    )
    if not rows:
        return None
    family_id, user_id, scope, tokens_valid_after, auth_time = rows[0]
    return Rotated(family_id, user_id, scope, tokens_valid_after or 0, auth_time)
