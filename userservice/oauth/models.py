"""Authlib's model interfaces over our records: the authorizing user, clients,
authorization codes, and the PKCE and client-credentials rules we hold them to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7636 import CodeChallenge

from userservice.db.models import AuthorizationCode
from userservice.records import StoredClient, UserRecord
from userservice.security.secrets import same_digest
from userservice.services.redirect_uris import redirect_uri_matches
from userservice.services.scopes import PRIVILEGED


@dataclass(frozen=True)
class AuthorizingUser:
    """The signed-in user at the authorization endpoint, with when they logged in."""

    record: UserRecord
    auth_time: int

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
        allowed = set(self.row.scope.split())
        if not scope:
            return " ".join(sorted(allowed - PRIVILEGED))
        wanted = set(scope.split())
        # C13: anything beyond the registration is invalid_scope, not silently cut.
        return " ".join(sorted(wanted)) if wanted <= allowed else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_matches(self.row.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_digest
        return stored is not None and same_digest(client_secret, stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.row.token_endpoint_auth_method)

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.row.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class CodeModel:
    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return self.row.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only (RFC 9700 §2.1.1; plain leaks the verifier)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class ServiceGrant(ClientCredentialsGrant):  # type: ignore[misc]
    # Confidential clients only: a public client cannot keep a credential (§4.4).
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
    ]
