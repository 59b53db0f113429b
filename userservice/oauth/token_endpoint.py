"""The token endpoint (RFC 6749 §3.2, §4.1.3, §4.3, §4.4, §6), revocation (RFC 7009)
and introspection (RFC 7662).

Every grant at /oauth/token goes through one dispatcher here, with one client
authentication, one scope policy (services/scopes.granted_scope), one
refresh-issuance rule (services/tokens.gets_refresh_token) and one response
builder (token_body). The authorization-code and client-credentials grants were
moved here out of Authlib: its grants are synchronous (a worker-thread hop per
token request) and brought a second client authentication with them. Authlib's
AuthorizationServer serves only the authorization endpoint (oauth/server.py).

Client authentication, client_credentials, the password grant, refresh,
revocation and introspection run on the event loop (the password grant's argon2
verify on the hasher's own threads); the code exchange takes one worker-thread
hop for its unit of work (oauth/code_exchange.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from userservice.db.clients import FIRST_PARTY_CLIENT_ID
from userservice.db.ports import Storage
from userservice.errors import (
    AuthenticationFailed,
    EmailNotVerified,
    OAuthError,
    SecondFactorRequired,
)
from userservice.oauth.code_exchange import CodeExchange
from userservice.oauth.params import MAX_VALUE_LENGTH, requested_scope, required
from userservice.observability.metrics import Grant as IssuedGrant
from userservice.observability.metrics import NoMetrics
from userservice.records import StoredClient
from userservice.security.secrets import same_digest
from userservice.services.access_tokens import Grant
from userservice.services.accounts import AccountService
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.id_tokens import IdTokenService
from userservice.services.scopes import granted_scope
from userservice.services.token_status import TokenStatus
from userservice.services.tokens import IssuedTokens, TokenService

GrantHandler = Callable[[StoredClient, dict[str, str], str], Awaitable[IssuedTokens]]

# M4: an extension error (RFC 6749 §8.5), answered only after a correct password.
MFA_REQUIRED = "mfa_required"
MFA_REQUIRED_DESCRIPTION = (
    "This account signs in with a second factor, which the password grant cannot "
    "take: use the authorization code flow with PKCE (/oauth/authorize)."
)


def token_body(issued: IssuedTokens) -> dict[str, Any]:
    """The one successful token response of every grant (RFC 6749 §5.1; the ID
    token of OIDC Core §3.1.3.3 when `openid` was granted)."""
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
    if issued.id_token is not None:
        body["id_token"] = issued.id_token
    return body


class TokenEndpoint:
    def __init__(
        self,
        db: Storage,
        accounts: AccountService,
        tokens: TokenService,
        status: TokenStatus,
        id_tokens: IdTokenService,
        metrics: NoMetrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics or NoMetrics()
        self.accounts = accounts
        self.tokens = tokens
        self.status = status
        self.codes = CodeExchange(db, tokens, id_tokens)
        self._grants: dict[str, GrantHandler] = {
            "authorization_code": self._authorization_code,
            "client_credentials": self._client_credentials,
            "password": self._password,
            "refresh_token": self._refresh,
        }
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
        client = await self.db.clients.client(client_id or FIRST_PARTY_CLIENT_ID)
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
        """The dispatcher: the grant type is known and the client registered for it
        (C1) before any grant's own rules run."""
        grant_type = required(params, "grant_type")
        handler = self._grants.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", "The grant type is not supported.")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", "This client may not use this grant type.")
        issued = await handler(client, params, ip)
        # Counted once the grant succeeded: a refused request issued nothing.
        self.metrics.token_issued(cast(IssuedGrant, grant_type))
        return token_body(issued)

    async def _authorization_code(
        self, client: StoredClient, params: dict[str, str], ip: str
    ) -> IssuedTokens:
        return await self.codes.exchange(client, params)

    async def _client_credentials(
        self, client: StoredClient, params: dict[str, str], ip: str
    ) -> IssuedTokens:
        # RFC 6749 §4.4: confidential clients only; a public client has no
        # credential of its own to act with.
        if client.client_type == "public":
            raise OAuthError(
                "unauthorized_client", "The client_credentials grant is for confidential clients."
            )
        scope = granted_scope(client, requested_scope(params), None)
        return self.tokens.client_token(client, scope)

    async def _password(
        self, client: StoredClient, params: dict[str, str], ip: str
    ) -> IssuedTokens:
        # RFC 9700 §2.4 forbids this grant for third parties; we keep it only for
        # our own first-party frontends (C1, C2).
        if not client.is_first_party:
            raise OAuthError(
                "unauthorized_client", "The password grant is for first-party clients."
            )
        username = required(params, "username")
        password = required(params, "password")
        scope = requested_scope(params)
        try:
            user = await self.accounts.authenticate(username, password, ip)
        except EmailNotVerified as exc:
            # The right password: say what to do (L7).
            raise OAuthError("invalid_grant", exc.detail) from None
        except AuthenticationFailed:
            raise OAuthError("invalid_grant", "Invalid email or password.") from None
        except SecondFactorRequired:
            # M4: the password was right, but alone it never signs this account in;
            # a wrong one was answered above exactly as for any account.
            raise OAuthError(MFA_REQUIRED, MFA_REQUIRED_DESCRIPTION) from None
        # The password was checked just now: that is when the user authenticated,
        # with the password alone (M5).
        grant = Grant(auth_time=int(time.time()), amr=PASSWORD_ONLY)
        return await self.tokens.issue(user, client, granted_scope(client, scope, user), grant)

    async def _refresh(self, client: StoredClient, params: dict[str, str], ip: str) -> IssuedTokens:
        token = required(params, "refresh_token")
        # No ID token on refresh (OIDC Core §12.2 makes it optional): the access
        # token carries the login's auth_time, amr and acr (M5).
        return await self.tokens.refresh_async(token, client, requested_scope(params))

    async def revoke(self, client: StoredClient, params: dict[str, str]) -> None:
        token = required(params, "token")
        # RFC 7009 §2.1: token_type_hint only speeds the search up; both kinds are
        # tried, and unknown or foreign tokens are answered with success (§2.2).
        if not await self.status.revoke_access(token, client):
            await self.tokens.rotation.revoke(token, client)

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
                # read closes that connection (db/postgres/async_reads.py), which callers
                # with bad credentials could otherwise force at will.
                self._detached.add(early)
                early.add_done_callback(self._forget)
            raise
        return await self.status.introspect(required(params, "token"), client, early)
