"""Deny list of revoked JWT access tokens (by jti), kept until the token expires."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.orm import Session

from userservice.db.models import RevokedAccessToken
from userservice.db.statement import Runner, Statement

_DENIED = cast(Table, RevokedAccessToken.__table__)
# Revoked twice is fine: RFC 7009 §2.2 answers 200 either way. (SQLite compiles
# PostgreSQL's ON CONFLICT construct too.)
_DENY = Statement(
    upsert(_DENIED)
    .values(
        jti=bindparam("jti", type_=_DENIED.c.jti.type),
        expires_at=bindparam("expires", type_=_DENIED.c.expires_at.type),
    )
    .on_conflict_do_nothing(index_elements=[_DENIED.c.jti])
)
# An expired token is refused by its `exp` anyway; its row is no longer needed.
_PRUNE = Statement(
    delete(_DENIED).where(_DENIED.c.expires_at < bindparam("now", type_=_DENIED.c.expires_at.type))
)


class DenyList:
    """The deny-list port, written once for every backend: hot writes, joining the
    SQLite group commit or one autocommit statement on PostgreSQL."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def deny(self, jti: str, expires_at: dt.datetime) -> None:
        await self._db.write(_PRUNE, {"now": dt.datetime.now(dt.UTC)})
        await self._db.write(_DENY, {"jti": jti, "expires": expires_at})


def deny(session: Session, jti: str, expires_at: dt.datetime) -> None:
    """The same, inside a unit of work (a code replay's revocations, B5)."""
    session.execute(_DENY.sql, {"jti": jti, "expires": expires_at})
