"""The scopes this server knows: one catalogue for consent, discovery, OpenAPI and
the access policy (services/policy.py)."""

from __future__ import annotations

from collections.abc import Collection

from userservice.errors import OAuthError
from userservice.i18n import N_
from userservice.records import StoredClient, UserRecord

# In the words the consent page shows: what the user actually lets an app do.
SCOPES: dict[str, str] = {
    "openid": N_("Know who you are (your account id)"),
    "profile": N_("See your display name"),
    "profile:write": N_("Change your display name"),
    "email": N_("See your email address and whether it is verified"),
    "offline_access": N_("Keep access while you are away (refresh tokens)"),
    "users:read": N_("Look up other users' profiles"),
    "users:write": N_("Change other users' accounts"),
    "admin": N_("Administer this service"),
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


def granted_scope(client: StoredClient, requested: str | None, user: UserRecord | None) -> str:
    """The one scope policy of every grant: the scope a token gets, from the client's
    registration, the request and the user the token acts for (None: the client acts
    for itself, RFC 6749 §4.4).

    Asking beyond the registration is invalid_scope, never silently cut (C13).
    Nothing asked means the whole registration (RFC 6749 §3.3). A user's token
    holds privileged scopes only when the user is an administrator (C2: no
    escalation, whichever grant asks)."""
    registered = set(client.scope.split())
    if requested is None:
        wanted = registered
    else:
        wanted = set(requested.split())
        if not wanted <= registered:
            raise OAuthError(
                "invalid_scope", "The requested scope exceeds what this client may get."
            )
    if user is not None and not user.is_admin:
        wanted -= PRIVILEGED
    return " ".join(sorted(wanted))


def consent_scope(client: StoredClient, requested: str | None) -> str:
    """What an authorization request asks the user for, before anyone knows who
    will answer it: the policy above, except that by default a consent page never
    offers privileged scopes unasked. The token endpoint applies the policy again
    with the user who consented."""
    default = " ".join(sorted(set(client.scope.split()) - PRIVILEGED))
    return granted_scope(client, default if requested is None else requested, None)
