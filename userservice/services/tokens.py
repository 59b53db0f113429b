"""Token issuance, refresh rotation and revocation (RFC 6749, 6819, 9068, 9700)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.engine import Connection

from userservice.db.engine import Database, as_utc
from userservice.db.refresh_rotation_pg import rotate_pg
from userservice.db.refresh_tokens import (
    NewRefreshToken,
    RefreshTokenRepository,
    TokenOwner,
    claim_for_rotation,
    insert_token,
    insert_token_async,
    owner_of,
    revoke_family,
)
from userservice.errors import OAuthError
from userservice.records import StoredClient, UserRecord
from userservice.security.secrets import digest, new_token
from userservice.services.access_tokens import AccessTokenSigner, Grant, TokenSettings
from userservice.services.audit import audit
from userservice.services.keys import KeyStore


@dataclass(frozen=True, slots=True)
class _Rotation:
    """What a committed rotation hands back: the new pair's inputs, or the reuse."""

    user_id: uuid.UUID
    tokens_valid_after: int
    scope: str
    refresh_token: str
    reused: TokenOwner | None
    family_id: uuid.UUID | None = None
    auth_time: int | None = None


class TokenService:
    def __init__(self, db: Database, keys: KeyStore, settings: TokenSettings) -> None:
        self.db = db
        self.keys = keys
        self.settings = settings
        self.signer = AccessTokenSigner(keys, settings)

    def client_token(self, client: StoredClient, scope: str) -> dict[str, Any]:
        """client_credentials (RFC 6749 §4.4): the client acts for itself; no refresh
        token (§4.4.3)."""
        token = self.signer.for_client(client.client_id, scope)
        audit("token.issued", client=client.client_id, scope=scope, grant="client_credentials")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.settings.access_ttl,
            "scope": scope,
        }

    def issue(
        self,
        user: UserRecord,
        client: StoredClient,
        scope: str,
        grant: Grant,
        *,
        with_refresh: bool,
    ) -> dict[str, Any]:
        if not with_refresh:
            return self._issued(user, client, scope, grant)
        token, row = self._new_family(user, client, scope, grant)
        with self.db.unit_of_work() as session:
            insert_token(session.connection(), row)
        # Signed once the family is committed: its access token is never ahead of it.
        body = self._issued(user, client, scope, _in_family(grant, row))
        body["refresh_token"] = token
        return body

    async def issue_async(
        self,
        user: UserRecord,
        client: StoredClient,
        scope: str,
        grant: Grant,
        *,
        with_refresh: bool,
    ) -> dict[str, Any]:
        """issue() for the event loop (the password grant): signing takes
        ~0.2 ms, and the refresh token's insert is awaited, not run in a thread."""
        if not with_refresh:
            return self._issued(user, client, scope, grant)
        token, row = self._new_family(user, client, scope, grant)
        await insert_token_async(self.db, row)
        body = self._issued(user, client, scope, _in_family(grant, row))
        body["refresh_token"] = token
        return body

    def _issued(
        self, user: UserRecord, client: StoredClient, scope: str, grant: Grant
    ) -> dict[str, Any]:
        access = self.signer.for_user(
            user.id, user.tokens_valid_after, client.client_id, scope, grant
        )
        expires_in = self.settings.access_ttl
        audit("token.issued", user=user.id, client=client.client_id, scope=scope)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }

    def _new_family(
        self, user: UserRecord, client: StoredClient, scope: str, grant: Grant
    ) -> tuple[str, NewRefreshToken]:
        now = dt.datetime.now(dt.UTC)
        token = new_token()
        row = NewRefreshToken(
            digest=digest(token),
            family_id=uuid.uuid4(),
            user_id=user.id,
            client_id=client.client_id,
            scope=scope,
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.refresh_absolute_ttl),
            auth_time=grant.auth_time,
        )
        return token, row

    async def refresh_async(
        self, token: str, client: StoredClient, requested: str | None
    ) -> dict[str, Any]:
        """refresh() for the event loop, without a worker thread per call.

        SQLite: the rotation joins the writer thread's next group commit
        (db/group_commit.py). PostgreSQL: a rotation that goes through is one
        statement (db/refresh_tokens.py rotate_pg); one it refuses takes the full
        path in a worker thread, which gives the precise error and detects reuse."""
        now = dt.datetime.now(dt.UTC)
        if self.db.is_sqlite:
            outcome = await self.db.write_batched(
                lambda conn: self._rotate(conn, token, client, requested, now)
            )
            return self._answer(outcome, client)
        new_refresh = new_token()
        rotated = await rotate_pg(
            self.db,
            token_digest=digest(token),
            successor_digest=digest(new_refresh),
            client_id=client.client_id,
            requested=[] if requested is None else requested.split(),
            now=now,
            idle_cutoff=now - dt.timedelta(seconds=self.settings.refresh_idle_ttl),
        )
        if rotated is None:
            return await anyio.to_thread.run_sync(self.refresh, token, client, requested)
        scope = rotated.scope if requested is None else " ".join(sorted(set(requested.split())))
        return self._answer(
            _Rotation(
                rotated.user_id,
                rotated.tokens_valid_after,
                scope,
                new_refresh,
                None,
                rotated.family_id,
                rotated.auth_time,
            ),
            client,
        )

    def refresh(self, token: str, client: StoredClient, requested: str | None) -> dict[str, Any]:
        """Rotate: the presented token is retired and a new one of the same family
        issued, in one transaction. Presenting a retired token means it leaked: the
        whole family dies (RFC 9700 §4.14.2)."""
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            outcome = self._rotate(session.connection(), token, client, requested, now)
        return self._answer(outcome, client)

    def _rotate(
        self,
        conn: Connection,
        token: str,
        client: StoredClient,
        requested: str | None,
        now: dt.datetime,
    ) -> _Rotation:
        """The rotation's statements (Core, no ORM: the ORM's unit of work cost more
        than the SQL): claim (UPDATE ... RETURNING, with the owner's standing), then
        insert the successor. A refusal raises, which rolls the claim back: an
        expired, foreign or over-scoped attempt retires nothing. A reuse kills the
        family and is reported, not raised, so that the family's death is committed."""
        invalid = OAuthError("invalid_grant", "The refresh token is invalid or expired.")
        token_digest = digest(token)
        claimed = claim_for_rotation(conn, token_digest, now)
        if claimed is None:
            owner = owner_of(conn, token_digest)
            if owner is None or owner.client_id != client.client_id:
                raise invalid  # C7: unknown, or another client's (left untouched)
            revoke_family(conn, owner.family_id, now)
            return _Rotation(owner.user_id, 0, "", "", owner)
        if claimed.client_id != client.client_id:
            raise invalid  # C7
        scope = self._refresh_scope(
            claimed.scope, claimed.issued_at, claimed.expires_at, requested, now, invalid
        )
        if not claimed.user_active:
            raise invalid  # disabled or deleted user
        new_refresh = new_token()
        successor = NewRefreshToken(
            digest=digest(new_refresh),
            family_id=claimed.family_id,
            user_id=claimed.user_id,
            client_id=client.client_id,
            # The family keeps its grant; a narrowed scope is for this access
            # token only, so a later refresh may ask for the rest again.
            scope=claimed.scope,
            issued_at=now,
            expires_at=as_utc(claimed.expires_at),
            auth_time=claimed.auth_time,
        )
        insert_token(conn, successor)
        return _Rotation(
            claimed.user_id,
            claimed.tokens_valid_after,
            scope,
            new_refresh,
            None,
            claimed.family_id,
            claimed.auth_time,
        )

    def _answer(self, outcome: _Rotation, client: StoredClient) -> dict[str, Any]:
        """The response, once the rotation is committed: no access token is ever
        signed for a rotation that did not happen."""
        if outcome.reused is not None:
            # RFC 9700 §4.14.2: a retired token came back, so someone holds a copy.
            # Audited after the commit: the family is dead by the time anyone reads it.
            audit(
                "token.reuse_detected",
                family=outcome.reused.family_id,
                user=outcome.reused.user_id,
                client=client.client_id,
            )
            raise OAuthError("invalid_grant", "The refresh token is invalid or expired.")
        audit("token.refreshed", user=outcome.user_id, client=client.client_id)
        access = self.signer.for_user(
            outcome.user_id,
            outcome.tokens_valid_after,
            client.client_id,
            outcome.scope,
            Grant(outcome.auth_time, outcome.family_id),
        )
        expires_in = self.settings.access_ttl
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": outcome.scope,
            "refresh_token": outcome.refresh_token,
        }

    def _refresh_scope(
        self,
        granted: str,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        requested: str | None,
        now: dt.datetime,
        invalid: OAuthError,
    ) -> str:
        idle_deadline = as_utc(issued_at) + dt.timedelta(seconds=self.settings.refresh_idle_ttl)
        if now >= as_utc(expires_at) or now >= idle_deadline:
            raise invalid
        if requested is None:
            return granted
        wanted = set(requested.split())
        if not wanted <= set(granted.split()):
            raise OAuthError("invalid_scope", "A refresh cannot widen the granted scope.")
        return " ".join(sorted(wanted))

    def revoke_refresh(self, token: str, client: StoredClient) -> None:
        """RFC 7009 §2.2: unknown or foreign tokens are answered like success, and a
        foreign token stays valid (a client may only revoke its own)."""
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            repo = RefreshTokenRepository(session)
            stored = repo.get_by_digest(digest(token))
            if stored is not None and stored.client_id == client.client_id:
                repo.revoke_family(stored.family_id, now)
                audit("token.revoked", user=stored.user_id, client=client.client_id)


def _in_family(grant: Grant, row: NewRefreshToken) -> Grant:
    return Grant(grant.auth_time, row.family_id, grant.not_before)
