"""Revocation of access tokens and token introspection (RFC 7009, RFC 7662)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Any

from userservice.db.engine import Database, as_utc
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.db.revoked_tokens import deny, prune
from userservice.records import StoredClient
from userservice.security.jwt import TokenInvalid, UnknownKey
from userservice.security.secrets import digest
from userservice.services.access_tokens import is_client_token, standing_user_token
from userservice.services.audit import audit
from userservice.services.keys import KeyStore
from userservice.services.scopes import reveals_email

INACTIVE: dict[str, Any] = {"active": False}
AUTHENTICATION_CLAIMS = ("auth_time", "acr", "amr")


def visible_to(answer: dict[str, Any], client: StoredClient) -> bool:
    """S4 (RFC 7662 §4): a client learns only about the access tokens issued to it; a
    client that an administrator marked as a resource server, about any (it checks
    the tokens presented to it). Anyone else could tell live tokens from dead ones
    and read whose they are."""
    return bool(answer["active"]) and (
        client.is_resource_server or answer.get("client_id") == client.client_id
    )


class TokenStatus:
    def __init__(self, db: Database, keys: KeyStore, issuer: str, refresh_idle_ttl: int) -> None:
        self.db = db
        self.keys = keys
        self.issuer = issuer
        self.refresh_idle_ttl = refresh_idle_ttl

    def _verified(self, token: str) -> dict[str, Any] | UnknownKey | None:
        try:
            return self.keys.ring.verify(
                token, issuer=self.issuer, audience=self.issuer, typ="at+jwt"
            )
        except UnknownKey as exc:
            return exc
        except TokenInvalid:
            return None

    def _access_claims(self, token: str) -> dict[str, Any] | None:
        """Worker threads: a kid we do not know may be another replica's new key."""
        result = self._verified(token)
        if isinstance(result, UnknownKey) and result.kid and self.keys.maybe_reload_for(result.kid):
            result = self._verified(token)
        return result if isinstance(result, dict) else None

    async def _access_claims_async(self, token: str) -> dict[str, Any] | None:
        """The event loop: the key reload's read must not block it."""
        result = self._verified(token)
        if isinstance(result, UnknownKey) and result.kid:
            kid = result.kid
            if await self.db.run_lookup(lambda _engine: self.keys.maybe_reload_for(kid)):
                result = self._verified(token)
        return result if isinstance(result, dict) else None

    def revoke_access(self, token: str, client: StoredClient) -> bool:
        """Deny-list a live access token of this client. Returns whether the token was
        one of our access tokens at all (else the caller tries refresh tokens)."""
        claims = self._access_claims(token)
        if claims is None:
            return False
        if claims.get("client_id") == client.client_id:
            expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
            with self.db.unit_of_work() as session:
                # Rows of tokens that expired anyway are no longer needed.
                prune(session, dt.datetime.now(dt.UTC))
                deny(session, str(claims["jti"]), expires)
            audit("token.revoked", user=claims.get("sub"), client=client.client_id, kind="access")
        return True

    async def introspect(
        self,
        token: str,
        client: StoredClient,
        prefetched: Awaitable[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """RFC 7662 §2.2. Anything not active, ours and visible to the caller is exactly
        {"active": false}: no hint why, so introspection cannot be used as an oracle.
        An access token's check runs on the event loop like the bearer check (or was
        started before the caller was known: `prefetched`, its introspect_access);
        a refresh token's is a short read (inline on SQLite, in a thread otherwise)."""
        if self.is_access_token(token):
            answer = await (prefetched or self.introspect_access(token))
            return answer if visible_to(answer, client) else INACTIVE
        return await self.db.run_lookup(lambda _engine: self._introspect_refresh(token, client))

    @staticmethod
    def is_access_token(token: str) -> bool:
        """Our access tokens are JWS compact (three parts); refresh tokens are opaque."""
        return token.count(".") == 2

    async def introspect_access(self, token: str) -> dict[str, Any]:
        """An access token's state, the same whoever asks: introspect() decides what
        the caller may see of it (S4)."""
        claims = await self._access_claims_async(token)
        if claims is None:
            return INACTIVE
        username: str | None = None
        if is_client_token(claims):
            # A client_credentials token: alive while its client exists, unrevoked.
            client_id = str(claims["client_id"])
            if not await self.db.clients.client_token_alive(client_id, str(claims["jti"])):
                return INACTIVE
        else:
            found = await standing_user_token(self.db, claims)
            if found is None:
                return INACTIVE
            user = found.user
            if reveals_email(str(claims.get("scope", "")).split()):
                # S4: the email only where the user let this token carry it.
                username = user.email
        body = {
            "active": True,
            "token_type": "Bearer",
            "scope": claims.get("scope", ""),
            "client_id": claims.get("client_id"),
            "username": username,
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
            # How and when the user authenticated, for a resource server that asks for
            # a recent or stronger login (RFC 9470 §6).
            **{name: claims.get(name) for name in AUTHENTICATION_CLAIMS},
        }
        return {key: value for key, value in body.items() if value is not None}

    def _introspect_refresh(self, token: str, client: StoredClient) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work(read_only=True) as session:
            stored = RefreshTokenRepository(session).get_by_digest(digest(token))
            if stored is None or stored.client_id != client.client_id:
                return INACTIVE  # refresh tokens are visible to their own client only
            issued = as_utc(stored.issued_at)
            expires = as_utc(stored.expires_at)
            idle_end = issued + dt.timedelta(seconds=self.refresh_idle_ttl)
            if stored.revoked_at is not None or now >= expires or now >= idle_end:
                return INACTIVE
            return {
                "active": True,
                "token_type": "refresh_token",
                "scope": stored.scope,
                "client_id": stored.client_id,
                "sub": str(stored.user_id),
                "iss": self.issuer,
                "exp": int(min(expires, idle_end).timestamp()),
                "iat": int(issued.timestamp()),
            }
