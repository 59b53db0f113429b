"""Who is calling: a bearer access token or, as a fallback, HTTP Basic credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

from userservice.db.clients import client_token_alive
from userservice.db.engine import Database
from userservice.db.users import UserRecord, lookup_for_token_async
from userservice.errors import AuthenticationFailed
from userservice.security.jwt import TokenInvalid, UnknownKey
from userservice.services.accounts import AccountService
from userservice.services.keys import KeyStore

# A Basic-authenticated caller is the user in person, on a first-party path.
BASIC_SCOPES = frozenset({"openid", "profile", "email", "users:read", "users:write", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord
    scopes: frozenset[str]
    client_id: str | None
    method: str  # "bearer" | "basic"

    @property
    def is_admin(self) -> bool:
        # Both the live role (G5: removal takes effect at once) and the token's scope.
        return self.user.is_admin and "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """A client acting for itself (client_credentials): no user behind it."""

    client_id: str
    scopes: frozenset[str]


class Authenticator:
    def __init__(self, db: Database, keys: KeyStore, accounts: AccountService, issuer: str) -> None:
        self.db = db
        self.keys = keys
        self.accounts = accounts
        self.issuer = issuer

    async def from_bearer(self, token: str) -> Principal:
        return await self._user_principal(await self._verify(token))

    async def from_bearer_any(self, token: str) -> Principal | ServicePrincipal:
        """A user's token, or a client's own (RFC 9068 §2.2: sub is the client_id)."""
        claims = await self._verify(token)
        if claims.get("sub") == claims.get("client_id"):
            return await self._service_principal(claims)
        return await self._user_principal(claims)

    async def _service_principal(self, claims: dict[str, object]) -> ServicePrincipal:
        client_id, jti = str(claims["client_id"]), str(claims["jti"])
        if not await client_token_alive(self.db, client_id, jti):
            raise AuthenticationFailed("Invalid access token.")
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        return ServicePrincipal(client_id=client_id, scopes=scopes)

    async def _user_principal(self, claims: dict[str, object]) -> Principal:
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthenticationFailed("Invalid access token.") from None
        jti = str(claims["jti"])
        client_id = str(claims.get("client_id", ""))
        iat = claims.get("iat")
        issued = iat if isinstance(iat, int) else 0
        found = await lookup_for_token_async(self.db, user_id, jti, client_id, issued)
        # Deleted, disabled, revoked, or older than a password change: refused at once.
        user, revoked = found if found else (None, True)
        if (
            user is None
            or revoked
            or not user.is_active
            or not isinstance(iat, int)  # verify() requires it; never trust a default
            or issued < user.tokens_valid_after
        ):
            raise AuthenticationFailed("Invalid access token.")
        scope = claims.get("scope", "")
        return Principal(
            user=user,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            client_id=str(claims.get("client_id", "")) or None,
            method="bearer",
        )

    async def _verify(self, token: str) -> dict[str, object]:
        for attempt in (1, 2):
            try:
                return self.keys.ring.verify(
                    token, issuer=self.issuer, audience=self.issuer, typ="at+jwt"
                )
            except UnknownKey as exc:
                # Another replica may have rotated in a key we have not loaded yet.
                kid = exc.kid
                if attempt == 2 or kid is None:
                    break
                if not await self.db.run_lookup(partial(self._reload_for, kid)):
                    break
            except TokenInvalid:
                break
        raise AuthenticationFailed("Invalid access token.")

    def _reload_for(self, kid: str, _engine: object) -> bool:
        return self.keys.maybe_reload_for(kid)

    async def from_basic(self, email: str, password: str, ip: str) -> Principal:
        # argon2 runs on the hasher's own threads, never on the event loop.
        user = await self.accounts.authenticate(email, password, ip)
        return Principal(user=user, scopes=BASIC_SCOPES, client_id=None, method="basic")
