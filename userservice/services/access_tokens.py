"""Access tokens (RFC 9068): what they say when signed, and whether a user's token
still stands when presented: the one check behind the bearer check, userinfo and
introspection, so that they always agree (S5)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from userservice.db.ports import Storage
from userservice.records import TokenKey, TokenStanding
from userservice.security.jwt import TokenInvalid, UnknownKey
from userservice.services.assurance import PASSWORD_ONLY, acr_of
from userservice.services.keys import KeyStore

# The refresh family an access token was issued with (a private claim, RFC 9068 §2.2.3
# allows them): the bearer check refuses the token once that family is revoked.
GRANT_CLAIM = "gid"


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    access_ttl: int
    refresh_idle_ttl: int
    refresh_absolute_ttl: int
    alg: str


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access token stands for besides its user and client: when the user
    authenticated (RFC 9470 §6: unchanged across refresh), the refresh family it
    was issued with (S5: revoking that family ends it), the earliest `iat` the
    grant accepts (a withdrawal mark of this user and client, if any), and how the
    user authenticated (RFC 8176 amr, M5: unchanged across refresh too)."""

    auth_time: int | None
    family_id: uuid.UUID | None = None
    not_before: int = 0
    amr: tuple[str, ...] = PASSWORD_ONLY


class AccessTokenSigner:
    def __init__(self, keys: KeyStore, settings: TokenSettings) -> None:
        self.keys = keys
        self.settings = settings

    def for_user(
        self,
        user_id: uuid.UUID,
        tokens_valid_after: int,
        client_id: str,
        scope: str,
        grant: Grant,
        *,
        jti: str | None = None,
    ) -> str:
        now = int(time.time())
        # Never stamp a token earlier than the user's revocation mark or the grant's
        # withdrawal mark, or a token issued in the same second as a password change
        # or a re-authorization would be refused (S5).
        iat = max(now, tokens_valid_after, grant.not_before)
        claims = self._claims(str(user_id), client_id, scope, iat, now, jti)
        if grant.auth_time is not None:
            # RFC 9068 §2.2.1: a user's token says when and how the user
            # authenticated, so a resource server can ask for more (RFC 9470, M5).
            claims["auth_time"] = grant.auth_time
            claims["acr"] = acr_of(grant.amr)
            claims["amr"] = list(grant.amr)
        if grant.family_id is not None:
            claims[GRANT_CLAIM] = grant.family_id.hex
        return self.keys.sign(claims, self.settings.alg, "at+jwt")

    def for_client(self, client_id: str, scope: str, *, jti: str | None = None) -> str:
        """A client acting for itself: RFC 9068 §2.2 puts its client_id in `sub`."""
        now = int(time.time())
        claims = self._claims(client_id, client_id, scope, now, now, jti)
        return self.keys.sign(claims, self.settings.alg, "at+jwt")

    def _claims(
        self, sub: str, client_id: str, scope: str, iat: int, now: int, jti: str | None
    ) -> dict[str, Any]:
        return {
            "iss": self.settings.issuer,
            "sub": sub,
            "aud": self.settings.issuer,
            "client_id": client_id,
            "scope": scope,
            "iat": iat,
            "nbf": now,
            "exp": now + self.settings.access_ttl,
            # Given by the caller when a grant stores it before signing (B5).
            "jti": jti or uuid.uuid4().hex,
        }


def is_client_token(claims: dict[str, Any]) -> bool:
    """A client's own token (client_credentials): RFC 9068 §2.2 puts its client_id
    in `sub`; no user stands behind it."""
    return bool(claims.get("sub") == claims.get("client_id"))


def token_key(claims: dict[str, Any]) -> TokenKey | None:
    """The lookup key of a user's token, or None if its claims cannot name one."""
    iat = claims.get("iat")
    if not isinstance(iat, int):  # verify() requires it; never trust a default
        return None
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        grant = claims.get(GRANT_CLAIM)
        grant_id = None if grant is None else uuid.UUID(str(grant))
    except ValueError:
        return None
    return TokenKey(user_id, str(claims["jti"]), str(claims.get("client_id", "")), iat, grant_id)


@dataclass(frozen=True, slots=True)
class CheckedToken:
    """A presented access token that stands: its claims, and for a user's token
    its standing (the user as stored now, first-party or not)."""

    claims: dict[str, Any]
    standing: TokenStanding | None  # None: a client's own token


class AccessTokenCheck:
    """The one check of a presented access token, behind the bearer check (and so
    userinfo) and introspection, so that they always agree (S5): the signature and
    claims against our key ring, then whether it still stands in the database."""

    def __init__(self, db: Storage, keys: KeyStore, issuer: str) -> None:
        self.db = db
        self.keys = keys
        self.issuer = issuer

    async def check(self, token: str) -> CheckedToken | None:
        claims = await self.claims(token)
        if claims is None:
            return None
        if is_client_token(claims):
            # A client_credentials token lives while its client exists, unrevoked.
            alive = await self.db.clients.client_token_alive(
                str(claims["client_id"]), str(claims["jti"])
            )
            return CheckedToken(claims, None) if alive else None
        standing = await self._standing(claims)
        return None if standing is None else CheckedToken(claims, standing)

    async def claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims, or None. A kid we do not know may be a key another
        replica rotated in: the ring is reloaded once (Storage.run_lookup: inline on
        SQLite, where a local read takes microseconds; in a thread on PostgreSQL)."""
        for attempt in (1, 2):
            try:
                return self.keys.ring.verify(
                    token, issuer=self.issuer, audience=self.issuer, typ="at+jwt"
                )
            except UnknownKey as exc:
                kid = exc.kid
                if attempt == 2 or kid is None:
                    return None
                if not await self.db.run_lookup(partial(self._reload_for, kid)):
                    return None
            except TokenInvalid:
                return None
        return None

    def _reload_for(self, kid: str, _engine: object) -> bool:
        return self.keys.maybe_reload_for(kid)

    async def _standing(self, claims: dict[str, Any]) -> TokenStanding | None:
        """Its user exists and is active, it is not revoked (itself, its grant, its
        client), and it is not older than the user's last password change or
        disabling."""
        key = token_key(claims)
        if key is None:
            return None
        found = await self.db.users.user_for_token(key)
        if (
            found is None
            or found.revoked
            or not found.user.is_active
            or key.iat < found.user.tokens_valid_after
        ):
            return None
        return found
