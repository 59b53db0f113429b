"""Remembered consent: which third-party clients a user let act for them."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from dataclasses import dataclass

from userservice.db.authorization_codes import CodeRepository, ConsentRepository
from userservice.db.clients import ClientRepository
from userservice.db.codec import utc as as_utc
from userservice.db.ports import Storage
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.errors import NotFound
from userservice.services.audit import record


@dataclass(frozen=True)
class GrantView:
    client_id: str
    client_name: str
    scope: str
    granted_at: dt.datetime


class ConsentService:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def covers(self, user_id: uuid.UUID, client_id: str, scope: str) -> bool:
        with self.db.unit_of_work(read_only=True) as session:
            consent = ConsentRepository(session).get(user_id, client_id)
            return consent is not None and set(scope.split()) <= set(consent.scope.split())

    def remember(
        self, user_id: uuid.UUID, client_id: str, scope: str, *, ip: str | None = None
    ) -> None:
        with self.db.unit_of_work() as session:
            ConsentRepository(session).grant(user_id, client_id, scope)
            record(session, "consent.granted", user=user_id, client=client_id, ip=ip, scope=scope)

    def list(self, user_id: uuid.UUID) -> list[GrantView]:
        with self.db.unit_of_work(read_only=True) as session:
            clients = ClientRepository(session)
            views = []
            for consent in ConsentRepository(session).list_for_user(user_id):
                client = clients.get(consent.client_id)
                views.append(
                    GrantView(
                        consent.client_id,
                        client.client_name if client else consent.client_id,
                        consent.scope,
                        as_utc(consent.created_at),
                    )
                )
            return views

    def revoke(self, user_id: uuid.UUID, client_id: str, *, ip: str | None = None) -> None:
        """Forget the consent and end that client's tokens for this user (L24):
        refresh tokens, access tokens and unredeemed codes, in one transaction."""
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            consents = ConsentRepository(session)
            if not consents.revoke(user_id, client_id):
                raise NotFound("No such grant.")
            # Access tokens are JWTs: refuse this client's tokens for this user issued
            # up to now (whole seconds, as `iat` is).
            consents.mark_revoked(user_id, client_id, math.floor(time.time()) + 1)
            RefreshTokenRepository(session).revoke_for_client(user_id, client_id, now)
            # A code the app got before and has not redeemed yet would buy it new
            # tokens after the withdrawal (S5).
            CodeRepository(session).discard_unredeemed(user_id, client_id)
            record(session, "consent.revoked", user=user_id, client=client_id, ip=ip)
