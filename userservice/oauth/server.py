"""Our authorization server: Authlib's grants bound to our clients, codes, users
and tokens. Used for the authorization-code flow (with PKCE and OpenID Connect)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import replace
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import ClientAuthentication
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core.grants import OpenIDCode

from userservice.db.authorization_codes import CodeRepository, ConsentRepository
from userservice.db.clients import (
    MAX_CLIENT_ID_LENGTH,
    load_client,
    load_client_async,
)
from userservice.db.engine import Database, as_utc
from userservice.db.models import AuthorizationCode
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.db.revoked_tokens import deny
from userservice.db.users import UserRepository, user_record
from userservice.oauth.adapter import (
    RequestSnapshot,
    SnapshotRequest,
    StarletteAuthorizationServer,
)
from userservice.oauth.authorization_request import (
    AuthorizationRequestChecks,
    refuse_response_type,
)
from userservice.oauth.models import (
    AuthorizingUser,
    ClientModel,
    CodeModel,
    S256Only,
    ServiceGrant,
)
from userservice.records import StoredClient
from userservice.security.secrets import digest
from userservice.services.access_tokens import GRANT_CLAIM, Grant
from userservice.services.audit import audit
from userservice.services.id_tokens import IdTokenService
from userservice.services.tokens import TokenService

CODE_TTL = dt.timedelta(minutes=5)  # B8: at most 10 minutes (RFC 6749 §4.1.2)


class OAuthServer(StarletteAuthorizationServer):
    def __init__(
        self, db: Database, tokens: TokenService, id_tokens: IdTokenService, issuer: str
    ) -> None:
        super().__init__(scopes_supported=None)
        self.db = db
        self.tokens = tokens
        self.id_tokens = id_tokens
        self.issuer = issuer
        self.register_token_generator("default", self._generate_token)
        server = self

        class CodeGrant(AuthorizationRequestChecks, AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]

            def save_authorization_code(self, code: str, request: SnapshotRequest) -> None:
                server.save_code(code, request)

            def query_authorization_code(self, code: str, client: ClientModel) -> Any:
                return server.redeem_code(code, client)

            def delete_authorization_code(self, authorization_code: CodeModel) -> None:
                # Kept until it expires, so that a replay can be recognised (B5).
                return None

            def authenticate_user(self, authorization_code: CodeModel) -> Any:
                return server.code_user(authorization_code)

        class IdTokens(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: SnapshotRequest) -> bool:
                return server.nonce_used(request.payload.client_id, nonce)

            def process_token(self, grant: Any, response: Any) -> Any:
                return server.add_id_token(grant, response)

        self.register_grant(CodeGrant, [S256Only(required=True), IdTokens(require_nonce=False)])
        self.register_grant(ServiceGrant)

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
        row = load_client(self.db, client_id)
        return ClientModel(row) if row is not None else None

    async def with_client(self, snap: RequestSnapshot, client_id: str | None) -> RequestSnapshot:
        """The snapshot with the client's row, read on the event loop (one awaited
        read), so that authentication in the worker thread reads nothing."""
        if not client_id:
            return snap
        row = await load_client_async(self.db, client_id)
        return replace(snap, prefetched_clients={client_id: row})

    def authenticate_client(
        self, request: Any, methods: list[str], endpoint: str = "token"
    ) -> ClientModel:
        """Authlib's client authentication, reading the row the endpoint prefetched
        on the event loop when there is one (api/oauth.py)."""
        snap = request.snapshot if isinstance(request, SnapshotRequest) else None
        prefetched = snap.prefetched_clients if snap is not None else {}

        def query(client_id: str) -> ClientModel | None:
            if isinstance(client_id, str) and client_id in prefetched:
                row: StoredClient | None = prefetched[client_id]
                return ClientModel(row) if row is not None else None
            return self.query_client(client_id)

        client: ClientModel = ClientAuthentication(query)(request, methods, endpoint)
        return client

    def save_token(self, token: dict[str, Any], request: SnapshotRequest) -> None:
        code: CodeModel | None = request.authorization_code
        if code is None:
            return
        family = token.pop("_family_id", None)
        with self.db.unit_of_work() as session:
            CodeRepository(session).record_issued(code.row.digest, family, token.pop("_jti"))

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
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )

    def redeem_code(self, code: str, client: ClientModel) -> CodeModel | None:
        now = dt.datetime.now(dt.UTC)
        code_digest = digest(code)
        with self.db.unit_of_work() as session:
            codes = CodeRepository(session)
            claimed = codes.claim(code_digest, client.get_client_id(), now)
            row = codes.get(code_digest)
            if row is None or row.client_id != client.get_client_id():
                return None  # B7: another client's code is as good as unknown
            if not claimed:
                # SQLite returns naive datetimes: compare in UTC, or replay is a 500.
                if row.used_at is not None and as_utc(row.used_at) < now:
                    self._revoke_issued(session, row, now)
                return None
            return CodeModel(row)

    def _revoke_issued(self, session: Any, row: AuthorizationCode, now: dt.datetime) -> None:
        # B5 / RFC 6749 §4.1.2: a code used twice was stolen; what it bought dies.
        if row.token_family_id is not None:
            RefreshTokenRepository(session).revoke_family(row.token_family_id, now)
        if row.access_jti:
            deny(session, row.access_jti, now + dt.timedelta(days=1))
        audit("code.reuse_detected", client=row.client_id, user=row.user_id)

    def code_user(self, code: CodeModel) -> AuthorizingUser | None:
        with self.db.unit_of_work(read_only=True) as session:
            user = UserRepository(session).get(code.row.user_id)
            if user is None or not user.is_active:
                return None
            return AuthorizingUser(user_record(user), code.row.auth_time)

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        with self.db.unit_of_work(read_only=True) as session:
            return CodeRepository(session).nonce_used(client_id, nonce)

    def _generate_token(
        self,
        grant_type: str,
        client: ClientModel,
        user: AuthorizingUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if user is None:
            if grant_type != "client_credentials":
                raise InvalidRequestError("This grant needs a user.")
            # Authlib passes the raw requested scope here: hold it to the registration.
            # RFC 6749 §3.3: without one, the client gets its whole registration (README).
            allowed = client.get_allowed_scope(scope) if scope else _registered(client)
            if allowed is None:
                raise InvalidScopeError()
            return self.tokens.client_token(client.row, allowed)
        granted = scope or ""
        # Third parties get refresh tokens only with offline_access (OIDC Core §11).
        with_refresh = include_refresh_token and (
            client.row.is_first_party or "offline_access" in granted.split()
        )
        with self.db.unit_of_work(read_only=True) as session:
            mark = ConsentRepository(session).withdrawal_mark(user.record.id, client.row.client_id)
        grant = Grant(user.auth_time, not_before=mark)
        body = self.tokens.issue(user.record, client.row, granted, grant, with_refresh=with_refresh)
        claims = _claims_of(body["access_token"])
        body["_jti"] = claims["jti"]
        if GRANT_CLAIM in claims:
            body["_family_id"] = uuid.UUID(claims[GRANT_CLAIM])
        return body

    def add_id_token(self, grant: Any, response: Any) -> Any:
        _, token, _ = response
        request: SnapshotRequest = grant.request
        if "openid" not in str(token.get("scope", "")).split():
            return token
        user: AuthorizingUser = request.user
        code: CodeModel | None = request.authorization_code
        token["id_token"] = self.id_tokens.create(
            user.record,
            request.client.get_client_id(),
            token["scope"],
            auth_time=user.auth_time,
            nonce=code.get_nonce() if code else None,
            access_token=token["access_token"],
        )
        return token


def _registered(client: ClientModel) -> str:
    return " ".join(sorted(set(client.row.scope.split())))


def _claims_of(access_token: str) -> dict[str, Any]:
    # Our own token, signed a moment ago: reading its payload needs no verification.
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims
