"""Checks of an authorization request that Authlib leaves out or answers with the
caller's input in its error text (OIDC Core §3.1.2.6, RFC 6749 §4.1.2.1)."""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)

# S6: request objects and dynamic registration are not offered (discovery says so).
UNSUPPORTED_PARAMETERS = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}


def redirect_for_errors(server: Any, request: Any) -> str | None:
    """The redirect URI an error may go back to: only one registered for a known
    client (A2, RFC 6749 §4.1.2.1); None means our own error page. A repeated
    client_id or redirect_uri (RFC 6749 §3.1) leaves it unknown which one was meant."""
    sent_twice = request.payload.datalist
    if len(sent_twice["client_id"]) > 1 or len(sent_twice["redirect_uri"]) > 1:
        return None
    client_id = request.payload.client_id
    client = server.query_client(client_id) if client_id else None
    if client is None:
        return None
    sent = request.payload.redirect_uri
    if sent:
        return sent if client.check_redirect_uri(sent) else None
    default: str | None = client.get_default_redirect_uri()
    return default


def refuse_response_type(server: Any, request: Any) -> None:
    """Raise for a missing or unsupported response_type, with no trace of what was
    sent (A3, S7: Authlib quotes it, and refuses its own text when it holds `\\`,
    `"` or a non-ASCII character: a 500)."""
    response_type = request.payload.response_type
    if response_type == "code":
        return
    redirect_uri = redirect_for_errors(server, request)
    if not response_type:
        # RFC 6749 §4.1.1: response_type is required.
        raise InvalidRequestError(redirect_uri=redirect_uri)
    raise UnsupportedResponseTypeError("", redirect_uri=redirect_uri)


class AuthorizationRequestChecks:
    """Mixed into the authorization-code grant, before Authlib's class."""

    UNSUPPORTED: ClassVar[dict[str, str]] = UNSUPPORTED_PARAMETERS
    request: Any

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: Any) -> str:
        # A2/S7: Authlib's refusal quotes the URI; ours says nothing of it.
        sent: str | None = request.payload.redirect_uri
        if sent:
            if not client.check_redirect_uri(sent):
                raise InvalidRequestError()
            return sent
        default: str | None = client.get_default_redirect_uri()
        if not default:
            raise InvalidRequestError(state=request.payload.state)
        return default

    def validate_authorization_request(self) -> str:
        data = self.request.payload.data
        # RFC 6749 §3.1: a parameter sent without a value counts as omitted.
        refused = next((e for p, e in self.UNSUPPORTED.items() if data.get(p)), None)
        if refused is None:
            redirect_uri: str = super().validate_authorization_request()  # type: ignore[misc]
            return redirect_uri
        # S6: once client and redirect URI are known good, this refusal wins over
        # anything else wrong (the request object might have carried the rest).
        try:
            redirect_uri = super().validate_authorization_request()  # type: ignore[misc]
        except OAuth2Error as error:
            if not error.redirect_uri:
                raise
            redirect_uri = error.redirect_uri
        raise OAuth2Error(error=refused, redirect_uri=redirect_uri)
