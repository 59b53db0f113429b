"""Who is calling: a bearer access token or, as a fallback, HTTP Basic credentials."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from userservice.db.engine import Database
from userservice.errors import InvalidToken
from userservice.records import UserRecord
from userservice.security.jwt import TokenInvalid, UnknownKey
from userservice.services.access_tokens import is_client_token, standing_user_token
from userservice.services.accounts import AccountService
from userservice.services.keys import KeyStore
from userservice.services.policy import Caller
from userservice.services.scopes import IN_PERSON


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord
    scopes: frozenset[str]
    client_id: str | None
    caller: Caller
    # When the user last proved who they are (RFC 9470 §6); None if unknown.
    auth_time: int | None

    @property
    def has_admin_role(self) -> bool:
        # The live role (G5: removal takes effect on the next request).
        return self.user.is_admin

    @property
    def is_admin(self) -> bool:
        # Both the live role and the token's scope.
        return self.user.is_admin and "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """A client acting for itself (client_credentials): no user behind it."""

    client_id: str
    scopes: frozenset[str]
    caller: Caller = Caller.SERVICE
    auth_time: int | None = None
    has_admin_role: bool = False


class Authenticator:
    def __init__(self, db: Database, keys: KeyStore, accounts: AccountService, issuer: str) -> None:
        self.db = db
        self.keys = keys
        self.accounts = accounts
        self.issuer = issuer

    async def from_bearer(self, token: str) -> Principal | ServicePrincipal:
        """A user's token, or a client's own (RFC 9068 §2.2: sub is the client_id)."""
        claims = await self._verify(token)
        if is_client_token(claims):
            return await self._service_principal(claims)
        return await self._user_principal(claims)

    async def _service_principal(self, claims: dict[str, object]) -> ServicePrincipal:
        client_id, jti = str(claims["client_id"]), str(claims["jti"])
        if not await self.db.clients.client_token_alive(client_id, jti):
            raise InvalidToken("Invalid access token.")
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        return ServicePrincipal(client_id=client_id, scopes=scopes)

    async def _user_principal(self, claims: dict[str, object]) -> Principal:
        found = await standing_user_token(self.db, claims)
        if found is None:
            raise InvalidToken("Invalid access token.")
        client_id = str(claims.get("client_id", ""))
        scope = claims.get("scope", "")
        auth_time = claims.get("auth_time")
        return Principal(
            user=found.user,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            client_id=client_id or None,
            caller=Caller.FIRST_PARTY if found.first_party else Caller.THIRD_PARTY,
            auth_time=auth_time if isinstance(auth_time, int) else None,
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
        raise InvalidToken("Invalid access token.")

    def _reload_for(self, kid: str, _engine: object) -> bool:
        return self.keys.maybe_reload_for(kid)

    async def from_basic(self, email: str, password: str, ip: str) -> Principal:
        # argon2 runs on the hasher's own threads, never on the event loop.
        user = await self.accounts.authenticate(email, password, ip)
        # The password was presented with this very request: a login just now.
        return Principal(
            user=user,
            scopes=IN_PERSON,
            client_id=None,
            caller=Caller.IN_PERSON,
            auth_time=int(time.time()),
        )
