"""Revocation of access tokens and token introspection (RFC 7009, RFC 7662)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Any

from userservice.db.ports import Storage
from userservice.records import StoredClient
from userservice.security.secrets import digest
from userservice.services.access_tokens import AccessTokenCheck
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
    def __init__(self, db: Storage, keys: KeyStore, issuer: str, refresh_idle_ttl: int) -> None:
        self.db = db
        self.issuer = issuer
        self.refresh_idle_ttl = refresh_idle_ttl
        self.check = AccessTokenCheck(db, keys, issuer)

    async def revoke_access(self, token: str, client: StoredClient) -> bool:
        """Deny-list a live access token of this client. Returns whether the token was
        one of our access tokens at all (else the caller tries refresh tokens)."""
        claims = await self.check.claims(token)
        if claims is None:
            return False
        if claims.get("client_id") == client.client_id:
            expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
            await self.db.deny_list.deny(str(claims["jti"]), expires)
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
        a refresh token's is one read through the refresh-token port, also on the loop."""
        if self.is_access_token(token):
            answer = await (prefetched or self.introspect_access(token))
            return answer if visible_to(answer, client) else INACTIVE
        return await self._introspect_refresh(token, client)

    @staticmethod
    def is_access_token(token: str) -> bool:
        """Our access tokens are JWS compact (three parts); refresh tokens are opaque."""
        return token.count(".") == 2

    async def introspect_access(self, token: str) -> dict[str, Any]:
        """An access token's state, the same whoever asks: introspect() decides what
        the caller may see of it (S4)."""
        checked = await self.check.check(token)
        if checked is None:
            return INACTIVE
        claims = checked.claims
        username: str | None = None
        if checked.standing is not None and reveals_email(str(claims.get("scope", "")).split()):
            # S4: the email only where the user let this token carry it.
            username = checked.standing.user.email
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

    async def _introspect_refresh(self, token: str, client: StoredClient) -> dict[str, Any]:
        state = await self.db.refresh_tokens.state(digest(token))
        if state is None or state.client_id != client.client_id:
            return INACTIVE  # refresh tokens are visible to their own client only
        idle_end = state.issued_at + dt.timedelta(seconds=self.refresh_idle_ttl)
        now = dt.datetime.now(dt.UTC)
        if state.revoked or now >= state.expires_at or now >= idle_end:
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": state.scope,
            "client_id": state.client_id,
            "sub": str(state.user_id),
            "iss": self.issuer,
            "exp": int(min(state.expires_at, idle_end).timestamp()),
            "iat": int(state.issued_at.timestamp()),
        }
