"""Typed records that cross the storage ports: what services, oauth/ and api/ see
of stored rows. No SQL and no HTTP here, so every layer may use them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the API sees it: never the password hash."""

    id: uuid.UUID
    email: str
    display_name: str | None
    is_active: bool
    is_admin: bool
    email_verified: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    tokens_valid_after: int


@dataclass(frozen=True, slots=True)
class StoredClient:
    """A registered client as authentication and token issuance read it. A plain
    record: building a detached ORM object cost ten times as much, on every client
    authentication (profiled). Fields are the table's columns, in order."""

    client_id: str
    client_name: str
    client_type: str
    secret_digest: str | None
    token_endpoint_auth_method: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    response_types: list[str]
    scope: str
    is_first_party: bool
    # May introspect every client's access tokens (RFC 7662 §4, S4).
    is_resource_server: bool
    logo_uri: str | None
    client_uri: str | None
    extra: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TokenKey:
    """What the bearer check looks up for a verified access token's claims."""

    user_id: uuid.UUID
    jti: str
    client_id: str
    iat: int
    # The refresh family the token was issued with, if any (its grant).
    grant_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class TokenStanding:
    """The token's user as stored now, and whether the token still stands."""

    user: UserRecord
    revoked: bool  # deny-listed, grant ended, or its client gone
    first_party: bool  # issued to a first-party client


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """A refresh token's row as issued (its digest only, never the token)."""

    digest: str
    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    # When the user authenticated; every rotation carries it forward unchanged.
    auth_time: int | None = None
    # How (space-separated RFC 8176 values; None: the password alone), carried too.
    amr: str | None = None


@dataclass(frozen=True, slots=True)
class RotationRequest:
    """Retire the token with this digest and issue its successor, if and only if
    it is active, its client's, within its lifetimes, its user active, and the
    requested scopes (empty: all) within its grant."""

    token_digest: str
    successor_digest: str
    client_id: str
    requested: frozenset[str]
    now: dt.datetime
    idle_cutoff: dt.datetime  # issued at or before this: idle too long


@dataclass(frozen=True, slots=True)
class Rotated:
    """A rotation that happened: the retired token's family, owner and grant."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    scope: str
    tokens_valid_after: int
    auth_time: int | None
    amr: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshState:
    """A stored refresh token as it stands (for refusals and introspection)."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scope: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked: bool


@dataclass(frozen=True, slots=True)
class SessionState:
    """A browser session as stored, with its user as stored now."""

    user: UserRecord
    auth_time: int
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    # How the login was made (space-separated RFC 8176 values; None: password alone).
    amr: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A mail to queue: which kind (a pair of templates), to whom, in which language,
    and the values its templates show (links among them)."""

    kind: str
    to: str
    locale: str
    values: Mapping[str, str]
    user_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """An outbox row as queued: the whole message, rendered once, so a resend after a
    crash is byte for byte the same mail with the same Message-ID."""

    message_id: str
    recipient: str
    kind: str
    content: str
    user_id: uuid.UUID | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    """An outbox row a sender holds the lease on; `attempt` counts this one."""

    id: int
    message_id: str
    recipient: str
    kind: str
    content: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One security event as it is stored (audit_events) and logged. `details` hold
    small facts only (a reason, a scope, a purpose): never a secret, a digest or an
    email address, so that erasing an account's ids and address leaves none behind."""

    event: str
    user_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    client_id: str | None = None
    ip: str | None = None
    details: Mapping[str, str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    """One stored event as the trail's readers (the admin API, the export) see it."""

    id: int
    occurred_at: dt.datetime
    event: str
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    client_id: str | None
    ip: str | None
    details: dict[str, Any]
