"""Domain exceptions. They carry no HTTP; api/ maps them to responses."""

from __future__ import annotations


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
