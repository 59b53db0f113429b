"""OpenID Connect ID tokens and userinfo claims (OIDC Core §2, §3.1.3.6, §5.4)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from userservice.records import UserRecord
from userservice.services.assurance import PASSWORD_ONLY, acr_of
from userservice.services.keys import KeyStore
from userservice.services.scopes import reveals_email

# OIDC requires RS256 support for ID tokens; every relying party can verify it.
OIDC_SIGNING_ALG = "RS256"


def claims_for_scope(user: UserRecord, scope: str) -> dict[str, Any]:
    """Only what the consented scopes cover (D10)."""
    granted = set(scope.split())
    claims: dict[str, Any] = {"sub": str(user.id)}
    if "profile" in granted:
        claims["name"] = user.display_name or ""
        claims["updated_at"] = int(user.updated_at.timestamp())
    if reveals_email(granted):
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    return claims


def at_hash(access_token: str) -> str:
    # OIDC Core §3.1.3.6: left half of the SHA-256 (RS256) of the ASCII token.
    half = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(half).decode().rstrip("=")


class IdTokenService:
    def __init__(self, keys: KeyStore, issuer: str, ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.ttl = ttl

    def create(
        self,
        user: UserRecord,
        client_id: str,
        scope: str,
        *,
        auth_time: int | None,
        nonce: str | None,
        access_token: str | None,
        amr: tuple[str, ...] = PASSWORD_ONLY,
    ) -> str:
        claims = claims_for_scope(user, scope)
        if nonce:
            claims["nonce"] = nonce
        return self._signed(claims, client_id, auth_time, amr, access_token)

    def _signed(
        self,
        claims: dict[str, Any],
        client_id: str,
        auth_time: int | None,
        amr: tuple[str, ...],
        access_token: str | None,
    ) -> str:
        now = int(time.time())
        claims.update(iss=self.issuer, aud=client_id, iat=now, exp=now + self.ttl)
        if auth_time is not None:
            claims["auth_time"] = auth_time
            # OIDC Core §2: how the user authenticated, as RFC 8176 methods and
            # as our level (M5); both from the one stored amr.
            claims["amr"] = list(amr)
            claims["acr"] = acr_of(amr)
        if access_token:
            claims["at_hash"] = at_hash(access_token)
        return self.keys.sign(claims, OIDC_SIGNING_ALG, "JWT")
