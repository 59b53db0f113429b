"""Authlib's model interfaces over our records, for the authorization endpoint: the
authorizing user, clients, and the PKCE rule we hold authorization requests to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from userservice.errors import OAuthError
from userservice.records import StoredClient, UserRecord
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.redirect_uris import redirect_uri_matches
from userservice.services.scopes import consent_scope


@dataclass(frozen=True)
class AuthorizingUser:
    """The signed-in user at the authorization endpoint, with when and how they
    logged in (the session's RFC 8176 amr, which the code carries on: M5)."""

    record: UserRecord
    auth_time: int
    amr: tuple[str, ...] = PASSWORD_ONLY

    def get_user_id(self) -> str:
        return str(self.record.id)


class ClientModel(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: StoredClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # A6: with several registered URIs the client must say which one.
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope the authorization request asks for; None (Authlib's
        invalid_scope) beyond the registration (C13)."""
        try:
            return consent_scope(self.row, scope or None)
        except OAuthError:
            return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_matches(self.row.redirect_uris, redirect_uri)

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.row.response_types


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only (RFC 9700 §2.1.1; plain leaks the verifier).
    The verifier is checked at our token endpoint (oauth/code_exchange.py)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)
