"""OAuth client repository."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

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
    if "\x00" in client_id:
        # No client id holds NUL, and PostgreSQL refuses it in a query (DataError, 503).
        return None
    with Session(engine, expire_on_commit=False) as session:
        client = session.scalars(
            select(OAuthClient).where(OAuthClient.client_id == client_id)
        ).first()
        if client is not None:
            session.expunge(client)
        return client
