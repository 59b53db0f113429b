"""Token, revocation and introspection endpoints' logic (RFC 6749 §3.2, §4.3, §6;
RFC 7009; RFC 7662).

Client authentication, introspection, a PostgreSQL refresh rotation (one statement)
and the password grant run on the event loop; the grant's argon2 verify runs on the
hasher's own threads. Revocation writes through a Session, in a worker thread."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from userservice.db.clients import FIRST_PARTY_CLIENT_ID, load_client_async
from userservice.db.engine import Database
from userservice.errors import AuthenticationFailed, OAuthError
from userservice.records import StoredClient
from userservice.security.secrets import same_digest
from userservice.services.access_tokens import Grant
from userservice.services.accounts import AccountService
from userservice.services.scopes import grantable_scopes
from userservice.services.token_status import TokenStatus
from userservice.services.tokens import TokenService

MAX_VALUE_LENGTH = 4096


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing parameter '{name}'.")
    if len(value) > MAX_VALUE_LENGTH:
        raise OAuthError("invalid_request", f"Parameter '{name}' is too long.")
    return value


def _scope(params: dict[str, str]) -> str | None:
    scope = params.get("scope")
    if scope is None or not scope.strip():
        return None  # absent or empty: the client's default scopes (RFC 6749 §3.3)
    if len(scope) > 1024 or not all(
        0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in scope.replace(" ", "")
    ):
        raise OAuthError("invalid_scope", "The scope parameter is malformed.")
    return scope


class TokenEndpoint:
    def __init__(
        self, db: Database, accounts: AccountService, tokens: TokenService, status: TokenStatus
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.tokens = tokens
        self.status = status
        # Introspection reads left to finish after a failed authentication: held
        # here so that they are not garbage-collected mid-flight.
        self._detached: set[asyncio.Task[dict[str, Any]]] = set()

    def _forget(self, task: asyncio.Task[dict[str, Any]]) -> None:
        self._detached.discard(task)
        if not task.cancelled():
            task.exception()  # seen: an error here (e.g. database down) is not logged

    async def authenticate_client(
        self, client_id: str | None, secret: str | None, method: str
    ) -> StoredClient:
        # No client_id at all: the built-in first-party client (frontends, docs UI).
        client = await load_client_async(self.db, client_id or FIRST_PARTY_CLIENT_ID)
        if (
            client is None
            # C3: only the method the client registered
            or client.token_endpoint_auth_method != method
            or (
                method != "none"
                and (
                    secret is None
                    or client.secret_digest is None
                    or not same_digest(secret, client.secret_digest)
                )
            )
        ):
            raise OAuthError("invalid_client", "Client authentication failed.", 401)
        return client

    async def token(self, client: StoredClient, params: dict[str, str], ip: str) -> dict[str, Any]:
        grant_type = _required(params, "grant_type")
        if grant_type not in ("password", "refresh_token"):
            raise OAuthError("unsupported_grant_type", "The grant type is not supported.")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", "This client may not use this grant type.")
        if grant_type == "password":
            return await self._password(client, params, ip)
        return await self.tokens.refresh_async(
            _required(params, "refresh_token"), client, _scope(params)
        )

    async def _password(
        self, client: StoredClient, params: dict[str, str], ip: str
    ) -> dict[str, Any]:
        # RFC 9700 §2.4 forbids this grant for third parties; we keep it only for
        # our own first-party frontends (C1, C2).
        if not client.is_first_party:
            raise OAuthError(
                "unauthorized_client", "The password grant is for first-party clients."
            )
        username = _required(params, "username")
        password = _required(params, "password")
        scope = _scope(params)
        try:
            user = await self.accounts.authenticate(username, password, ip)
        except AuthenticationFailed:
            raise OAuthError("invalid_grant", "Invalid email or password.") from None
        granted = grantable_scopes(client, user, scope)
        # The password was checked just now: that is when the user authenticated.
        grant = Grant(auth_time=int(time.time()))
        return await self.tokens.issue_async(
            user, client, granted, grant, with_refresh="refresh_token" in client.grant_types
        )

    def revoke(self, client: StoredClient, params: dict[str, str]) -> None:
        token = _required(params, "token")
        # RFC 7009 §2.1: token_type_hint only speeds the search up; both kinds are
        # tried, and unknown or foreign tokens are answered with success (§2.2).
        if not self.status.revoke_access(token, client):
            self.tokens.revoke_refresh(token, client)

    async def introspect_request(
        self, client_ids: tuple[str | None, str | None, str], params: dict[str, str]
    ) -> dict[str, Any]:
        """Client authentication and introspection are reads only (client row,
        signature check, user row): on the event loop, like the bearer check.

        An access token's state does not depend on which client asks, so its read
        goes out beside the client's (one round trip instead of two; on PostgreSQL
        both join the batches of that moment). Its answer is used only once the
        caller is authenticated, as far as that caller may see it (S4), and is
        dropped unread when it is not: the 401 does not wait for it, and is the
        same for any token."""
        token = params.get("token")
        early: asyncio.Task[dict[str, Any]] | None = None
        if token and len(token) <= MAX_VALUE_LENGTH and self.status.is_access_token(token):
            early = asyncio.ensure_future(self.status.introspect_access(token))
        try:
            client = await self.authenticate_client(*client_ids)
            # RFC 7662 §2.1: the caller must be authorized; anonymous callers could
            # otherwise probe stolen tokens.
            if client.client_type == "public":
                raise OAuthError(
                    "invalid_client", "Introspection requires client authentication.", 401
                )
        except BaseException:
            if early is not None:
                # Left to finish, not cancelled: a cancel landing inside a PostgreSQL
                # read closes that connection (db/async_reads.py), which callers
                # with bad credentials could otherwise force at will.
                self._detached.add(early)
                early.add_done_callback(self._forget)
            raise
        return await self.status.introspect(_required(params, "token"), client, early)
