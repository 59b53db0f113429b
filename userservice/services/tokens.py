"""Token issuance, refresh rotation and revocation (RFC 6749, 6819, 9068, 9700)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from userservice.db.ports import Storage
from userservice.observability.metrics import NoMetrics
from userservice.records import NewRefreshToken, StoredClient, UserRecord
from userservice.security.secrets import digest, new_token
from userservice.services.access_tokens import AccessTokenSigner, Grant, TokenSettings
from userservice.services.assurance import stored_amr
from userservice.services.audit import audit
from userservice.services.keys import KeyStore
from userservice.services.refresh_rotation import RefreshRotation


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """What a token response says (RFC 6749 §5.1), before it is JSON; the jti and
    refresh family are there for whoever must remember what a grant bought."""

    access_token: str
    expires_in: int
    scope: str
    jti: str
    refresh_token: str | None = None
    family_id: uuid.UUID | None = None
    id_token: str | None = None


@dataclass(frozen=True, slots=True)
class Issuance:
    """A user's tokens decided but not signed: the refresh family to store (with its
    token) when there is one, and the access token's jti."""

    user: UserRecord
    client_id: str
    scope: str
    grant: Grant
    jti: str
    refresh_token: str | None
    family: NewRefreshToken | None


def gets_refresh_token(client: StoredClient, scope: str) -> bool:
    """The one refresh-issuance rule of every grant: the client registered the
    refresh_token grant, and it is first-party or the user granted offline_access
    (a third party keeps access while the user is away only with that consent,
    OIDC Core §11). A client acting for itself never gets one (RFC 6749 §4.4.3)."""
    return "refresh_token" in client.grant_types and (
        client.is_first_party or "offline_access" in scope.split()
    )


def _new_jti() -> str:
    return uuid.uuid4().hex


class TokenService:
    def __init__(
        self,
        db: Storage,
        keys: KeyStore,
        settings: TokenSettings,
        metrics: NoMetrics | None = None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.settings = settings
        self.signer = AccessTokenSigner(keys, settings)
        self.rotation = RefreshRotation(db.refresh_tokens, settings.refresh_idle_ttl, metrics)

    def client_token(self, client: StoredClient, scope: str) -> IssuedTokens:
        """client_credentials (RFC 6749 §4.4): the client acts for itself; no refresh
        token (§4.4.3)."""
        jti = _new_jti()
        token = self.signer.for_client(client.client_id, scope, jti=jti)
        audit("token.issued", client=client.client_id, scope=scope, grant="client_credentials")
        return IssuedTokens(token, self.settings.access_ttl, scope, jti)

    def plan(self, user: UserRecord, client: StoredClient, scope: str, grant: Grant) -> Issuance:
        """A user's tokens decided, not yet stored or signed: a refresh family when
        the one rule allows it, and the access token's jti, so that a grant's unit
        of work can store both before anything is signed (B5)."""
        if not gets_refresh_token(client, scope):
            return Issuance(user, client.client_id, scope, grant, _new_jti(), None, None)
        token, row = self._new_family(user, client, scope, grant)
        in_family = Grant(grant.auth_time, row.family_id, grant.not_before, grant.amr)
        return Issuance(user, client.client_id, scope, in_family, _new_jti(), token, row)

    async def issue(
        self, user: UserRecord, client: StoredClient, scope: str, grant: Grant
    ) -> IssuedTokens:
        """A user's tokens on the event loop: the refresh family's insert is awaited
        (no worker thread), and signing takes ~0.2 ms."""
        issuance = self.plan(user, client, scope, grant)
        if issuance.family is not None:
            await self.db.refresh_tokens.insert(issuance.family)
        return self.signed(issuance)

    def signed(self, issuance: Issuance) -> IssuedTokens:
        """Called once the issuance's family is committed: an access token is never
        ahead of its family."""
        user = issuance.user
        access = self.signer.for_user(
            user.id,
            user.tokens_valid_after,
            issuance.client_id,
            issuance.scope,
            issuance.grant,
            jti=issuance.jti,
        )
        audit("token.issued", user=user.id, client=issuance.client_id, scope=issuance.scope)
        return IssuedTokens(
            access,
            self.settings.access_ttl,
            issuance.scope,
            issuance.jti,
            issuance.refresh_token,
            issuance.grant.family_id,
        )

    def _new_family(
        self, user: UserRecord, client: StoredClient, scope: str, grant: Grant
    ) -> tuple[str, NewRefreshToken]:
        now = dt.datetime.now(dt.UTC)
        token = new_token()
        row = NewRefreshToken(
            digest=digest(token),
            family_id=uuid.uuid4(),
            user_id=user.id,
            client_id=client.client_id,
            scope=scope,
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.refresh_absolute_ttl),
            auth_time=grant.auth_time,
            amr=stored_amr(grant.amr),
        )
        return token, row

    async def refresh_async(
        self, token: str, client: StoredClient, requested: str | None
    ) -> IssuedTokens:
        """Rotate the refresh token (services/refresh_rotation.py), then sign: no
        access token is ever signed for a rotation that did not happen. No new ID
        token: OIDC Core §12.2 leaves it optional, and a second RS256 signature would
        double the refresh's cost; the access token carries the login's amr."""
        rotation = await self.rotation.rotate(token, client, requested)
        audit("token.refreshed", user=rotation.user_id, client=client.client_id)
        jti = _new_jti()
        access = self.signer.for_user(
            rotation.user_id,
            rotation.tokens_valid_after,
            client.client_id,
            rotation.scope,
            # auth_time and amr as the family stored them: a refresh is no new
            # login (RFC 9470 §6, M5).
            Grant(rotation.auth_time, rotation.family_id, amr=rotation.amr),
            jti=jti,
        )
        return IssuedTokens(
            access,
            self.settings.access_ttl,
            rotation.scope,
            jti,
            rotation.refresh_token,
            rotation.family_id,
        )
