"""Who may call which operation: the one table every protected route goes through.

Callers are told apart by how they authenticated, not by what they claim:
- the user in person: HTTP Basic with their own password (or a hosted-page session);
- a first-party client: a token issued to one of our own frontends;
- a third-party client: a token issued to an app the user consented to, limited to
  the consented scopes (RFC 6750 §3.1: a missing scope is `insufficient_scope`);
- a service client: a client acting for itself (client_credentials), no user.
Account management (password, email, grants, deletion, export) is for the user in
person or a first-party client only, whatever scope a third party holds (S2).
Sensitive operations also ask how recent and how strong the login behind the call
is (M12, RFC 9470): `Rule.check` decides what it can from the principal alone and
hands the guard a `PendingStepUp` when the answer depends on whether the account
has a second factor, which the guard reads on the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from userservice.errors import FirstPartyOnly, Forbidden, InsufficientScope, StepUpRequired
from userservice.services.assurance import ACR_MFA, acr_of
from userservice.services.scopes import implied

# M12: how recent a login must be for a sensitive operation (RFC 9470's max_age).
RECENT_AUTH_SECONDS = 300


class Caller(StrEnum):
    IN_PERSON = "in_person"
    FIRST_PARTY = "first_party"
    THIRD_PARTY = "third_party"
    SERVICE = "service"


class Acting(Protocol):
    """What the policy needs to know of an authenticated caller."""

    @property
    def caller(self) -> Caller: ...
    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def auth_time(self) -> int | None: ...
    @property
    def has_admin_role(self) -> bool: ...
    @property
    def amr(self) -> tuple[str, ...]: ...


class StepUp(StrEnum):
    """Which logins a sensitive operation takes (M12)."""

    # A login of the last RECENT_AUTH_SECONDS; a multi-factor one where the account
    # has a second factor (deletion, export, factor changes, admin factor reset).
    ALWAYS = "always"
    # Only where the account has a second factor: then a recent multi-factor login.
    # Without one the current password the operation asks for is enough (S3).
    WITH_FACTOR = "with_factor"


@dataclass(frozen=True, slots=True)
class PendingStepUp:
    """A step-up decision that waits for one fact: whether the account behind the
    call has a second factor (db/factors.py's rule, read by the guard)."""

    mode: StepUp
    recent: bool
    multi_factor: bool

    def settle(self, has_factor: bool) -> None:
        if has_factor:
            if not (self.recent and self.multi_factor):
                # RFC 9470 §3: acr_values tells the client what to ask for.
                raise StepUpRequired(RECENT_AUTH_SECONDS, acr_values=ACR_MFA)
        elif self.mode is StepUp.ALWAYS and not self.recent:
            raise StepUpRequired(RECENT_AUTH_SECONDS)


def step_up_pending(mode: StepUp, principal: Acting, now: float) -> PendingStepUp | None:
    """None when the login satisfies `mode` whatever the account holds (recent and
    multi-factor), so the factor is read only when it could change the answer."""
    auth_time = principal.auth_time
    recent = auth_time is not None and now - auth_time <= RECENT_AUTH_SECONDS
    multi_factor = acr_of(principal.amr) == ACR_MFA
    if recent and multi_factor:
        return None
    return PendingStepUp(mode, recent, multi_factor)


USERS = frozenset({Caller.IN_PERSON, Caller.FIRST_PARTY, Caller.THIRD_PARTY})
ACCOUNT_OWNER = frozenset({Caller.IN_PERSON, Caller.FIRST_PARTY})


@dataclass(frozen=True)
class Rule:
    callers: frozenset[Caller]
    # Every one of these is needed in a token (the user in person holds them all).
    scopes: tuple[str, ...] = ()
    # A user behind the call must hold the admin role (checked live, G5); a service
    # client is admitted by its scopes, which an administrator registered.
    admin: bool = False
    # How recent and strong the login behind the call must be (M12); None: any.
    step_up: StepUp | None = None

    def check(self, principal: Acting, now: float | None = None) -> PendingStepUp | None:
        """Raises for a caller the rule refuses outright; returns what is left to
        decide once the account's second factor is known (the guards in api/deps.py
        read it and settle), or None when nothing is."""
        if principal.caller not in self.callers:
            if principal.caller is Caller.THIRD_PARTY and Caller.FIRST_PARTY in self.callers:
                raise FirstPartyOnly(
                    "Only the account owner or a first-party client may do this; "
                    "no scope grants it to a third-party app."
                )
            raise Forbidden("This kind of caller may not use this operation.")
        missing = [scope for scope in self.scopes if scope not in principal.scopes]
        if missing and not implied(missing, principal.scopes):
            raise InsufficientScope(" ".join(missing))
        if self.admin and principal.caller is not Caller.SERVICE and not principal.has_admin_role:
            raise Forbidden("This operation needs an administrator.")
        if self.step_up is None:
            return None
        return step_up_pending(self.step_up, principal, time.time() if now is None else now)


ADMIN = Rule(ACCOUNT_OWNER, scopes=("admin",), admin=True)
ADMIN_RECENT = Rule(ACCOUNT_OWNER, scopes=("admin",), admin=True, step_up=StepUp.ALWAYS)
# M12: deletion, export and factor changes; a token left behind, or one from a
# password alone, cannot take the account away from a user who has a factor.
SENSITIVE = Rule(ACCOUNT_OWNER, step_up=StepUp.ALWAYS)
# The password and the address: the current password, and for an account with a
# second factor a recent multi-factor login as well (S3, M12).
CREDENTIALS = Rule(ACCOUNT_OWNER, step_up=StepUp.WITH_FACTOR)

# Keyed by operation id (the route function's name, also the OpenAPI operationId).
POLICY: dict[str, Rule] = {
    # Own profile: the email fields appear only with the `email` scope.
    "read_me": Rule(USERS, scopes=("profile",)),
    "update_me": Rule(USERS, scopes=("profile:write",)),
    # Changing the email or the password through update_me is account management.
    "change_credentials": CREDENTIALS,
    "delete_me": SENSITIVE,
    "list_grants": Rule(ACCOUNT_OWNER),
    "revoke_grant": Rule(ACCOUNT_OWNER),
    # The account page's operations as JSON (api/sessions.py, api/email_change.py,
    # api/privacy.py): account management, so never a third-party app's.
    "list_sessions": Rule(ACCOUNT_OWNER),
    "end_session": Rule(ACCOUNT_OWNER),
    "end_all_sessions": Rule(ACCOUNT_OWNER),
    "change_email": CREDENTIALS,
    "export_me": SENSITIVE,
    # Second factors (api/factors.py): account management; a change needs a recent
    # login (multi-factor once there is a factor), so that a token left behind
    # cannot swap the factor for its own (M3, M12).
    "list_factors": Rule(ACCOUNT_OWNER),
    "start_totp": SENSITIVE,
    "confirm_totp": SENSITIVE,
    "remove_totp": SENSITIVE,
    "regenerate_recovery_codes": SENSITIVE,
    # Passkeys (api/passkeys.py): the same as the app. Registering through the API
    # works only for a frontend served from the relying party's own origin.
    "passkey_registration_options": SENSITIVE,
    "register_passkey": SENSITIVE,
    "rename_passkey": SENSITIVE,
    "remove_passkey": SENSITIVE,
    # Yourself (then read_me's rule applies), or anyone with `users:read`: an
    # administrator's token, or a service client granted it.
    "read_user": Rule(USERS | {Caller.SERVICE}),
    "read_other_user": Rule(USERS | {Caller.SERVICE}, scopes=("users:read",), admin=True),
    "list_users": ADMIN,
    # Granting the admin role or re-enabling an account, and deleting one, need a
    # recent (and, for an administrator with a factor, multi-factor) login: an old
    # administrator's token kept alive by refreshes cannot make a new administrator
    # who would then undo the sign-in rule (M8, M12).
    "admin_update_user": ADMIN_RECENT,
    "admin_delete_user": ADMIN_RECENT,
    "list_user_events": ADMIN,
    "create_client": ADMIN,
    "list_clients": ADMIN,
    "read_client": ADMIN,
    "update_client": ADMIN,
    "delete_client": ADMIN,
    "rotate_client_secret": ADMIN,
    # A user's second factors, and whether administrators must have one (M8).
    # Stripping factors or switching the policy needs a recent login (RFC 9470):
    # an old, refreshed administrator's token cannot undo what guards sign-in.
    "list_user_factors": ADMIN,
    "reset_user_factors": ADMIN_RECENT,
    "read_mfa_policy": ADMIN,
    "update_mfa_policy": ADMIN_RECENT,
    # The signing keys every replica shares (api/admin_keys.py).
    "list_signing_keys": ADMIN,
    "rotate_signing_keys": ADMIN,
    # OIDC Core §5.3: any user's token that carries `openid`.
    "userinfo_get": Rule(frozenset({Caller.FIRST_PARTY, Caller.THIRD_PARTY}), ("openid",)),
    "userinfo_post": Rule(frozenset({Caller.FIRST_PARTY, Caller.THIRD_PARTY}), ("openid",)),
}

# Operations open to anyone (or authenticated as an OAuth client, not as a user).
PUBLIC = frozenset(
    {
        "register",
        # The mail journeys (api/account_mail.py): a mailed token is the credential.
        "request_verification",
        "confirm_verification",
        "request_password_reset",
        "confirm_password_reset",
        "confirm_email_change",
        "undo_email_change",
        "token",
        "revoke",
        "introspect",
        "jwks",
        "openid_configuration",
        "oauth_metadata",
        "healthz",
        "readyz",
    }
)
