"""OAuth client repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import Session

from userservice.db.codec import utc
from userservice.db.models import OAuthClient, RevokedAccessToken
from userservice.db.statement import Runner, Statement
from userservice.records import StoredClient

# Created by migration 0001 so frontends and the docs UI can log in out of the box.
FIRST_PARTY_CLIENT_ID = "userservice-frontend"


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, client_id: str) -> OAuthClient | None:
        return self.session.get(OAuthClient, client_id)

    def stored(self, client_id: str) -> StoredClient | None:
        """The client's record, inside a unit of work (a cold path)."""
        if not plausible_client_id(client_id):
            return None
        row = self.session.execute(_CLIENT_BY_ID.sql, {"client_id": client_id}).first()
        if row is None:
            return None
        found = StoredClient(*row)
        return replace(found, created_at=utc(found.created_at), updated_at=utc(found.updated_at))

    def get_for_update(self, client_id: str) -> OAuthClient | None:
        # Row lock on PostgreSQL so that two concurrent edits cannot lose one another.
        return self.session.get(OAuthClient, client_id, with_for_update=True)

    def add(self, client: OAuthClient) -> OAuthClient:
        self.session.add(client)
        self.session.flush()
        return client

    def list_all(self) -> Sequence[OAuthClient]:
        return self.session.scalars(
            select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.client_id)
        ).all()

    def delete(self, client_id: str) -> bool:
        # Refresh tokens, codes and consents of the client go with it (ON DELETE CASCADE).
        result = self.session.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
        return bool(getattr(result, "rowcount", 0))


MAX_CLIENT_ID_LENGTH = 64
_CLIENT_KEYS = tuple(field.name for field in fields(StoredClient))
_CLIENT_BY_ID = Statement(
    select(*(OAuthClient.__table__.c[key] for key in _CLIENT_KEYS)).where(
        OAuthClient.client_id == bindparam("client_id")
    ),
    batch_keys=("client_id",),
)
_CLIENT_TOKEN_ALIVE = Statement(
    select(
        and_(
            select(OAuthClient.client_id)
            .where(OAuthClient.client_id == bindparam("client_id"))
            .exists(),
            ~select(RevokedAccessToken.jti)
            .where(RevokedAccessToken.jti == bindparam("jti"))
            .exists(),
        )
    )
)


def plausible_client_id(client_id: str) -> bool:
    # No client id is longer than the column or holds NUL, which PostgreSQL refuses
    # in a query (DataError, a 503 instead of "no such client").
    return len(client_id) <= MAX_CLIENT_ID_LENGTH and "\x00" not in client_id


class ClientReads:
    """The clients port's hot reads, written once for every backend."""

    def __init__(self, db: Runner) -> None:
        self._db = db

    async def client(self, client_id: str) -> StoredClient | None:
        """One SELECT and no ORM Session (batched with the lookups of the same
        moment where the backend can)."""
        if not plausible_client_id(client_id):
            return None
        row = await self._db.fetch_one(_CLIENT_BY_ID, {"client_id": client_id})
        return None if row is None else StoredClient(*row)

    async def client_token_alive(self, client_id: str, jti: str) -> bool:
        """A client_credentials token lives while its client exists and its jti is
        not on the deny list: one read."""
        if not plausible_client_id(client_id):
            return False
        row = await self._db.fetch_one(_CLIENT_TOKEN_ALIVE, {"client_id": client_id, "jti": jti})
        return bool(row and row[0])
