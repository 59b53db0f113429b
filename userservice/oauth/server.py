"""Our authorization server for the authorization endpoint: Authlib's
authorization-code grant (with PKCE and OpenID Connect) validates /oauth/authorize
requests and saves the codes. Codes are redeemed at our own token endpoint
(oauth/token_endpoint.py, oauth/code_exchange.py), not through Authlib."""

from __future__ import annotations

import datetime as dt
from typing import Any

from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core.grants import OpenIDCode

from userservice.db.authorization_codes import CodeRepository
from userservice.db.clients import MAX_CLIENT_ID_LENGTH, ClientRepository
from userservice.db.models import AuthorizationCode
from userservice.db.ports import Storage
from userservice.oauth.adapter import SnapshotRequest, StarletteAuthorizationServer
from userservice.oauth.authorization_request import (
    AuthorizationRequestChecks,
    refuse_response_type,
)
from userservice.oauth.models import AuthorizingUser, ClientModel, S256Only
from userservice.security.secrets import digest
from userservice.services.assurance import stored_amr

CODE_TTL = dt.timedelta(minutes=5)  # B8: at most 10 minutes (RFC 6749 §4.1.2)


class OAuthServer(StarletteAuthorizationServer):
    def __init__(self, db: Storage, issuer: str) -> None:
        super().__init__(scopes_supported=None)
        self.db = db
        self.issuer = issuer
        server = self

        class CodeGrant(AuthorizationRequestChecks, AuthorizationCodeGrant):  # type: ignore[misc]
            def save_authorization_code(self, code: str, request: SnapshotRequest) -> None:
                server.save_code(code, request)

        class IdTokens(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: SnapshotRequest) -> bool:
                return server.nonce_used(request.payload.client_id, nonce)

        self.register_grant(CodeGrant, [S256Only(required=True), IdTokens(require_nonce=False)])

        class Issuer(IssuerParameter):  # type: ignore[misc]
            def get_issuer(self) -> str:
                return server.issuer

        self.register_extension(Issuer())

    def get_authorization_grant(self, request: SnapshotRequest) -> Any:
        refuse_response_type(self, request)
        return super().get_authorization_grant(request)

    def query_client(self, client_id: str) -> ClientModel | None:
        if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        with self.db.unit_of_work(read_only=True) as session:
            row = ClientRepository(session).stored(client_id)
        return ClientModel(row) if row is not None else None

    def save_code(self, code: str, request: SnapshotRequest) -> None:
        user: AuthorizingUser = request.user
        data = request.payload.data
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            codes = CodeRepository(session)
            # Expired codes can no longer be redeemed or replayed: clear them as we go.
            codes.prune(now - dt.timedelta(minutes=1))
            codes.add(
                AuthorizationCode(
                    digest=digest(code),
                    client_id=request.client.get_client_id(),
                    user_id=user.record.id,
                    redirect_uri=request.payload.redirect_uri or "",
                    scope=request.scope or "",
                    nonce=data.get("nonce"),
                    code_challenge=data["code_challenge"],
                    code_challenge_method="S256",
                    auth_time=user.auth_time,
                    amr=stored_amr(user.amr),
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        with self.db.unit_of_work(read_only=True) as session:
            return CodeRepository(session).nonce_used(client_id, nonce)
