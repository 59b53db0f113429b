"""Form parameters and client credentials as RFC 6749 defines them."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_plus

from authlib.common.security import is_secure_transport

from userservice.errors import OAuthError
from userservice.security.basic import parse_basic

MAX_FIELDS = 32
MAX_VALUE_LENGTH = 4096


def require_secure_transport(url: str) -> None:
    """Credentials and tokens cross the token endpoint: never over cleartext HTTP,
    except to a loopback address (C14; RFC 6749 §3.2, RFC 8252 §7.3). Authlib's own
    test of the URL, so the rule is the one its grants applied."""
    if not is_secure_transport(url):
        raise OAuthError("insecure_transport", "OAuth requires HTTPS.")


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing parameter '{name}'.")
    if len(value) > MAX_VALUE_LENGTH:
        raise OAuthError("invalid_request", f"Parameter '{name}' is too long.")
    return value


def requested_scope(params: dict[str, str]) -> str | None:
    """The scope parameter (RFC 6749 §3.3), None when absent or empty: the client's
    default then applies (services/scopes.py)."""
    scope = params.get("scope")
    if scope is None or not scope.strip():
        return None
    if len(scope) > 1024 or not all(
        0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in scope.replace(" ", "")
    ):
        raise OAuthError("invalid_scope", "The scope parameter is malformed.")
    return scope


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """RFC 6749 §3.2: application/x-www-form-urlencoded, and no parameter may be
    sent more than once (a repeated one could smuggle a second value past checks)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send parameters as application/x-www-form-urlencoded.")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "The request body could not be parsed.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # S7: the name is the caller's input: never echoed.
            raise OAuthError("invalid_request", "A parameter is repeated.")
        params[name] = value
    return params


def client_credentials(
    params: dict[str, str], authorization: str
) -> tuple[str | None, str | None, str]:
    """(client_id, secret, method) from the Basic header or the body (§2.3.1). Every
    endpoint that authenticates clients (token with any grant, revocation,
    introspection) reads them here, so the one-method rule holds for all (S8)."""
    if authorization:
        if not authorization.lower().startswith("basic "):
            raise OAuthError("invalid_client", "Unsupported client authentication.", 401)
        parsed = parse_basic(authorization)
        if parsed is None:
            raise OAuthError("invalid_client", "Malformed client credentials.", 401)
        # §2.3.1: Basic credentials are form-urlencoded before base64.
        client_id, secret = unquote_plus(parsed[0]), unquote_plus(parsed[1])
        # S8, §2.3: one method per request. A secret in the body besides Basic, or
        # a body naming another client, leaves it open which one authenticates.
        if "client_secret" in params or params.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "Use one client authentication method only.")
        if not secret:
            # Tools such as Swagger UI send public clients as "client_id:" in Basic.
            return client_id, None, "none"
        return client_id, secret, "client_secret_basic"
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if body_secret is not None:
        return body_id, body_secret, "client_secret_post"
    return body_id, None, "none"
