"""The scopes this server knows: one catalogue for consent, discovery, OpenAPI and
the access policy (services/policy.py)."""

from __future__ import annotations

from collections.abc import Collection

from userservice.errors import OAuthError
from userservice.records import StoredClient, UserRecord

# In the words the consent page shows: what the user actually lets an app do.
SCOPES: dict[str, str] = {
    "openid": "Know who you are (your account id)",
    "profile": "See your display name",
    "profile:write": "Change your display name",
    "email": "See your email address and whether it is verified",
    "offline_access": "Keep access while you are away (refresh tokens)",
    "users:read": "Look up other users' profiles",
    "users:write": "Change other users' accounts",
    "admin": "Administer this service",
}

# Scopes that let a token act beyond its own user: only administrators may hold them.
PRIVILEGED = frozenset({"admin", "users:read", "users:write"})
# The user in person (HTTP Basic, a hosted-page session) holds every scope; what
# they may do is then decided by their role alone.
IN_PERSON = frozenset(SCOPES)


# `admin` includes reading and changing other users.
_IMPLIED_BY = {"users:read": "admin", "users:write": "admin"}


def implied(missing: list[str], held: frozenset[str]) -> bool:
    """Whether every scope in `missing` is included in one the token holds."""
    return all(_IMPLIED_BY.get(scope) in held for scope in missing)


def reveals_email(scopes: Collection[str]) -> bool:
    """The email address (and whether it is verified) is personal data of its own:
    shown only to tokens granted `email` (S2, S4, OIDC Core §5.4)."""
    return "email" in scopes


def describe(scope: str) -> str:
    return SCOPES.get(scope, scope)


def grantable_scopes(client: StoredClient, user: UserRecord, requested: str | None) -> str:
    """Scopes for a user token: requested (or all the client allows), never beyond the
    client's registration (C13), privileged ones only for admins (C2: no escalation)."""
    allowed = set(client.scope.split())
    if requested is None:
        wanted = allowed
    else:
        wanted = set(requested.split())
        if not wanted <= allowed:
            raise OAuthError(
                "invalid_scope", "The requested scope exceeds what this client may get."
            )
    if not user.is_admin:
        wanted -= PRIVILEGED
    return " ".join(sorted(wanted))
