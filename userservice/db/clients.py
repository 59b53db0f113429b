"""OAuth client repository."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, bindparam, delete, select
from sqlalchemy.orm import Session, make_transient_to_detached

from userservice.db.engine import SINGLE_READ
from userservice.db.models import OAuthClient

# Created by migration 0001 so frontends and the docs UI can log in out of the box.
FIRST_PARTY_CLIENT_ID = "userservice-frontend"


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, client_id: str) -> OAuthClient | None:
        return self.session.get(OAuthClient, client_id)

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


def load_client(engine: Engine, client_id: str) -> OAuthClient | None:
    """A detached OAuthClient, or None. Core and one SELECT rather than an ORM
    Session: this runs on every client authentication (issue 4 profile)."""
    if "\x00" in client_id:
        # No client id holds NUL, and PostgreSQL refuses it in a query (DataError, 503).
        return None
    with engine.connect().execution_options(**SINGLE_READ) as conn:
        row = conn.execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
    if row is None:
        return None
    client = OAuthClient(**dict(zip(_CLIENT_KEYS, row, strict=True)))
    # As if loaded and expunged: a later Session.add would update, never insert.
    make_transient_to_detached(client)
    return client


_CLIENT_KEYS = tuple(attr.key for attr in OAuthClient.__mapper__.column_attrs)
_CLIENT_BY_ID = select(*(attr.columns[0] for attr in OAuthClient.__mapper__.column_attrs)).where(
    OAuthClient.client_id == bindparam("client_id")
)
