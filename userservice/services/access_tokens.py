"""Whether a verified access token of a user still stands: the one check behind the
bearer check, userinfo and introspection, so that they always agree (S5)."""

from __future__ import annotations

import uuid
from typing import Any

from userservice.db.engine import Database
from userservice.db.users import TokenKey, TokenStanding, lookup_for_token_async
from userservice.services.tokens import GRANT_CLAIM


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
    found = await lookup_for_token_async(db, key)
    if (
        found is None
        or found.revoked
        or not found.user.is_active
        or key.iat < found.user.tokens_valid_after
    ):
        return None
    return found
