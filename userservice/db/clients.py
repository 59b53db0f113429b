"""OAuth client repository."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from userservice.db.models import OAuthClient

# Created by migration 0001 so frontends and the docs UI can log in out of the box.
FIRST_PARTY_CLIENT_ID = "userservice-frontend"


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, client_id: str) -> OAuthClient | None:
        return self.session.get(OAuthClient, client_id)


def load_client(engine: Engine, client_id: str) -> OAuthClient | None:
    with Session(engine, expire_on_commit=False) as session:
        client = session.scalars(
            select(OAuthClient).where(OAuthClient.client_id == client_id)
        ).first()
        if client is not None:
            session.expunge(client)
        return client
