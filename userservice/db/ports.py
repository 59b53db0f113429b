"""The storage ports: the typed operations services and oauth/ call, one Protocol
per concern. Every backend (db/backend.py Database, for SQLite or PostgreSQL)
implements all of them; values cross as the records of userservice/records.py."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from userservice.records import (
    AuditEntry,
    ClaimedMail,
    NewRefreshToken,
    QueuedMail,
    RefreshState,
    Rotated,
    RotationRequest,
    SessionState,
    StoredClient,
    TokenKey,
    TokenStanding,
    UserRecord,
)

T = TypeVar("T")
# What a cold path's unit of work hands to db/'s repositories.
UnitOfWork = Session


class UserLookups(Protocol):
    async def user_for_token(self, key: TokenKey) -> TokenStanding | None: ...
    async def credentials(self, email: str) -> tuple[UserRecord, str] | None: ...
    async def second_factor_state(self, user_id: uuid.UUID) -> tuple[bool, str | None]: ...


class ClientLookups(Protocol):
    async def client(self, client_id: str) -> StoredClient | None: ...
    async def client_token_alive(self, client_id: str, jti: str) -> bool: ...


class RefreshTokenStore(Protocol):
    async def insert(self, token: NewRefreshToken) -> None: ...
    async def rotate(self, request: RotationRequest) -> Rotated | None: ...
    async def state(self, token_digest: str) -> RefreshState | None: ...
    async def revoke_family(self, family_id: uuid.UUID, now: dt.datetime) -> None: ...


class UserSearchPort(Protocol):
    async def page(
        self, *, email: str | None, name: str | None, after_email: str | None, limit: int
    ) -> list[UserRecord]: ...


class SessionLookups(Protocol):
    async def find(self, id_digest: str) -> SessionState | None: ...


class DenyListStore(Protocol):
    async def deny(self, jti: str, expires_at: dt.datetime) -> None: ...


class OutboxStore(Protocol):
    def add(
        self, uow: UnitOfWork, mail: QueuedMail, *, after_commit: Callable[[], None] | None = None
    ) -> None: ...
    async def claim(
        self, now: dt.datetime, lease: dt.datetime, limit: int
    ) -> list[ClaimedMail]: ...
    async def renew(self, mail: ClaimedMail, now: dt.datetime, lease: dt.datetime) -> bool: ...
    async def delivered(self, mail: ClaimedMail, now: dt.datetime) -> None: ...
    async def retry(self, mail: ClaimedMail, at: dt.datetime, error: str) -> None: ...
    async def failed(self, mail: ClaimedMail, now: dt.datetime, error: str) -> None: ...
    async def release(self, mail: ClaimedMail) -> None: ...


class AuditStore(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...


class Storage(Protocol):
    """Everything a service may ask of the database."""

    @property
    def users(self) -> UserLookups: ...
    @property
    def clients(self) -> ClientLookups: ...
    @property
    def refresh_tokens(self) -> RefreshTokenStore: ...
    @property
    def user_search(self) -> UserSearchPort: ...
    @property
    def sessions(self) -> SessionLookups: ...
    @property
    def deny_list(self) -> DenyListStore: ...
    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def audit(self) -> AuditStore: ...

    def unit_of_work(
        self, *, read_only: bool = False, unbounded: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        """One transaction of a cold path, yielding an ORM Session for db/'s
        repositories: committed when the block ends, rolled back on error;
        `unbounded` swaps the serving time limits for pruning's own (long
        statements, short lock waits)."""
        ...

    async def run_lookup(self, func: Callable[[Any], T]) -> T:
        """A short blocking read of a cold path, run where it cannot stall the
        event loop for long."""
        ...

    def prune_turn(self) -> AbstractContextManager[bool]:
        """Held around a whole pruning pass (N6): True when this caller has the
        deployment's one turn, False at once when another process or replica
        holds it (db/prune_lock.py)."""
        ...
