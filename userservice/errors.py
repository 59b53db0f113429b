"""Domain exceptions. They carry no HTTP; api/ maps them to responses."""

from __future__ import annotations

import uuid


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    code = "error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidInput(DomainError):
    code = "invalid_input"


class WeakPassword(InvalidInput):
    code = "weak_password"


class InvalidRedirectUri(InvalidInput):
    code = "invalid_redirect_uri"  # RFC 7591 §3.2.2


class InvalidClientMetadata(InvalidInput):
    code = "invalid_client_metadata"  # RFC 7591 §3.2.2


class RegistrationClosed(DomainError):
    code = "registration_closed"


class AuthenticationFailed(DomainError):
    code = "authentication_failed"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidAccountToken(DomainError):
    """A mailed link that is unknown, used, expired, tampered with or meant for
    something else: one answer for all of them (400), and nothing changes."""

    code = "invalid_token"


class EmailNotVerified(Forbidden):
    """The right password for an account that must verify its address first."""

    code = "email_not_verified"


class InvalidToken(AuthenticationFailed):
    """A presented access token that is not (or no longer) valid (RFC 6750 §3.1)."""

    code = "invalid_token"


class StepUpRequired(AuthenticationFailed):
    """The login behind the call is too old or too weak for it (RFC 9470 §3):
    `acr_values`, when set, names the level a new login must reach."""

    code = "insufficient_user_authentication"

    def __init__(self, max_age: int, acr_values: str | None = None) -> None:
        if acr_values:
            message = (
                f"This operation needs a login with a second factor within the last "
                f"{max_age} seconds."
            )
        else:
            message = f"This operation needs a login within the last {max_age} seconds."
        super().__init__(message)
        self.max_age = max_age
        self.acr_values = acr_values


class SecondFactorRequired(DomainError):
    """The password was right and the account needs a second factor: the password
    alone never signs it in, by any route (M4). `step`: `verify` when the user has a
    factor, `enrol` when the sign-in policy requires one the user lacks."""

    code = "mfa_required"

    def __init__(self, user_id: uuid.UUID, step: str) -> None:
        super().__init__(
            "This account signs in with a second factor: use the authorization code "
            "flow (/oauth/authorize), where the hosted sign-in page asks for it."
        )
        self.user_id = user_id
        self.step = step


class InvalidCode(Forbidden):
    """A second-factor code that is wrong, used already, or outside its time window
    (M1, M2): one refusal for all of them."""

    code = "invalid_code"


class InvalidPasskey(Forbidden):
    """A passkey answer that does not verify: unknown credential, wrong origin or RP
    ID, a challenge not ours, expired or answered before, a bad signature, a sign
    counter that went backwards (M9): one refusal for all of them."""

    code = "invalid_passkey"


class PasskeysUnavailable(Conflict):
    """The public URL's host is not a domain name, so no browser would accept it as
    a WebAuthn relying party id: passkeys are off on this deployment."""

    code = "passkeys_unavailable"


class SecondFactorNeeded(Forbidden):
    """The operation needs the account's second factor as well as its password (M7)."""

    code = "second_factor_required"


class InsufficientScope(Forbidden):
    """The token lacks a scope that would allow the call (RFC 6750 §3.1)."""

    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"The access token lacks the scope this operation needs: {scope}.")
        self.scope = scope


class FirstPartyOnly(Forbidden):
    """Account management by a third-party app: no scope would allow it."""

    code = "first_party_only"


class Throttled(DomainError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed attempts; try again later.")
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(DomainError):
    code = "service_unavailable"


class OAuthError(DomainError):
    """RFC 6749 §5.2 error; `error` is the registered code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status
