"""Refresh-token rotation (RFC 6749 §6, RFC 9700 §4.14.2): every use retires the
presented token and issues its successor in the same family; a retired token
presented again means a copy leaked, and the whole family dies.

The rules a rotation must meet are the storage port's (db/refresh_tokens.py: one
conditional claim, run atomically with the successor's insert by each backend).
A refused rotation changed nothing; only then is the token read again, to give
the precise error and to recognise a reuse."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import NoReturn

from userservice.db.ports import RefreshTokenStore
from userservice.errors import OAuthError
from userservice.observability.metrics import NoMetrics
from userservice.records import RefreshState, RotationRequest, StoredClient
from userservice.security.secrets import digest, new_token
from userservice.services.assurance import loaded_amr
from userservice.services.audit import audit

_INVALID = "The refresh token is invalid or expired."


@dataclass(frozen=True, slots=True)
class Rotation:
    """A committed rotation: the successor token and what its access token says."""

    refresh_token: str
    family_id: uuid.UUID
    user_id: uuid.UUID
    tokens_valid_after: int
    scope: str  # the requested narrowing, or the whole grant
    auth_time: int | None
    amr: tuple[str, ...]  # the family's login (M5); NULL rows read as the password


class RefreshRotation:
    def __init__(
        self, store: RefreshTokenStore, idle_ttl: int, metrics: NoMetrics | None = None
    ) -> None:
        self.store = store
        self.metrics = metrics or NoMetrics()
        self.idle_ttl = dt.timedelta(seconds=idle_ttl)

    async def rotate(self, token: str, client: StoredClient, requested: str | None) -> Rotation:
        now = dt.datetime.now(dt.UTC)
        token_digest = digest(token)
        successor = new_token()
        wanted = frozenset(requested.split()) if requested else frozenset()
        rotated = await self.store.rotate(
            RotationRequest(
                token_digest,
                digest(successor),
                client.client_id,
                wanted,
                now,
                idle_cutoff=now - self.idle_ttl,
            )
        )
        if rotated is None:
            await self._refused(token_digest, client, wanted, now)
        return Rotation(
            successor,
            rotated.family_id,
            rotated.user_id,
            rotated.tokens_valid_after,
            " ".join(sorted(wanted)) if wanted else rotated.scope,
            rotated.auth_time,
            loaded_amr(rotated.amr),
        )

    async def _refused(
        self, token_digest: str, client: StoredClient, wanted: frozenset[str], now: dt.datetime
    ) -> NoReturn:
        state = await self.store.state(token_digest)
        if state is None or state.client_id != client.client_id:
            # C7: unknown, or another client's, which stays untouched.
            raise OAuthError("invalid_grant", _INVALID)
        if state.revoked:
            # RFC 9700 §4.14.2: a retired token came back, so someone holds a copy.
            await self.store.revoke_family(state.family_id, now)
            self.metrics.refresh_reuse_detected()
            audit(
                "token.reuse_detected",
                family=state.family_id,
                user=state.user_id,
                client=client.client_id,
            )
            raise OAuthError("invalid_grant", _INVALID)
        if self._alive(state, now) and not wanted <= set(state.scope.split()):
            raise OAuthError("invalid_scope", "A refresh cannot widen the granted scope.")
        raise OAuthError("invalid_grant", _INVALID)  # expired, idle, or its user disabled

    def _alive(self, state: RefreshState, now: dt.datetime) -> bool:
        return now < state.expires_at and now < state.issued_at + self.idle_ttl

    async def revoke(self, token: str, client: StoredClient) -> None:
        """RFC 7009 §2.2: unknown or foreign tokens are answered like success, and a
        foreign token stays valid (a client may only revoke its own)."""
        state = await self.store.state(digest(token))
        if state is not None and state.client_id == client.client_id:
            await self.store.revoke_family(state.family_id, dt.datetime.now(dt.UTC))
            audit("token.revoked", user=state.user_id, client=client.client_id)
