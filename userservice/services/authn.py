"""Who is calling: a bearer access token or, as a fallback, HTTP Basic credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import anyio

from userservice.db.engine import Database
from userservice.db.users import UserRecord, lookup_for_token
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


class Authenticator:
    def __init__(self, db: Database, keys: KeyStore, accounts: AccountService, issuer: str) -> None:
        self.db = db
        self.keys = keys
        self.accounts = accounts
        self.issuer = issuer

    async def from_bearer(self, token: str) -> Principal:
        claims = await self._verify(token)
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthenticationFailed("Invalid access token.") from None
        jti = str(claims["jti"])
        found = await self.db.run_lookup(lambda engine: lookup_for_token(engine, user_id, jti))
        # Deleted, disabled, revoked, or older than a password change: refused at once.
        user, revoked = found if found else (None, True)
        issued_at = claims["iat"]
        if (
            user is None
            or revoked
            or not user.is_active
            or not isinstance(issued_at, int)
            or issued_at < user.tokens_valid_after
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
        # argon2 runs in a worker thread; the hasher bounds how many run at once.
        user = await anyio.to_thread.run_sync(self.accounts.authenticate, email, password, ip)
        return Principal(user=user, scopes=BASIC_SCOPES, client_id=None, method="basic")
