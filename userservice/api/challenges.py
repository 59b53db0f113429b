"""WWW-Authenticate challenges for the API's authentication and scope errors."""

from __future__ import annotations

from userservice import errors

_REALM = 'realm="userservice"'
_BASIC = 'Basic realm="userservice", charset="UTF-8"'


def challenge_headers(exc: errors.DomainError) -> dict[str, str]:
    """RFC 6750 §3 (invalid_token, insufficient_scope), RFC 9470 §3 (a login too old
    for the operation), RFC 7617 (Basic, the fallback every 401 offers)."""
    if isinstance(exc, errors.InsufficientScope):
        return {
            "WWW-Authenticate": (
                f'Bearer {_REALM}, error="insufficient_scope", scope="{exc.scope}"'
            )
        }
    if isinstance(exc, errors.StepUpRequired):
        wanted = f'acr_values="{exc.acr_values}", ' if exc.acr_values else ""
        described = (
            "A more recent login with a second factor is required"
            if exc.acr_values
            else "A more recent login is required"
        )
        return {
            "WWW-Authenticate": (
                f'Bearer {_REALM}, error="insufficient_user_authentication", '
                f'error_description="{described}", {wanted}max_age={exc.max_age}'
            )
        }
    if isinstance(exc, errors.InvalidToken):
        return {"WWW-Authenticate": f'Bearer {_REALM}, error="invalid_token", {_BASIC}'}
    if isinstance(exc, errors.AuthenticationFailed):
        return {"WWW-Authenticate": f"Bearer {_REALM}, {_BASIC}"}
    return {}
