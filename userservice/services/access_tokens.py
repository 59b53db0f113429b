"""Access tokens (RFC 9068): what they say when signed, and whether a user's token
still stands when presented: the one check behind the bearer check, userinfo and
introspection, so that they always agree (S5)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from userservice.db.engine import Database
from userservice.records import TokenKey, TokenStanding
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
    was issued with (S5: revoking that family ends it), and the earliest `iat` the
    grant accepts (a withdrawal mark of this user and client, if any)."""

    auth_time: int | None
    family_id: uuid.UUID | None = None
    not_before: int = 0


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
            claims["auth_time"] = grant.auth_time
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


async def standing_user_token(db: Database, claims: dict[str, Any]) -> TokenStanding | None:
    """The token's standing if it still stands: its user exists and is active, it is
    not revoked (itself, its grant, its client), and it is not older than the user's
    last password change or disabling. None otherwise."""
    key = token_key(claims)
    if key is None:
        return None
    found = await db.users.user_for_token(key)
    if (
        found is None
        or found.revoked
        or not found.user.is_active
        or key.iat < found.user.tokens_valid_after
    ):
        return None
    return found
