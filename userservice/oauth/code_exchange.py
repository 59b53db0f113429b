"""The authorization-code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636
§4.6, OIDC Core §3.1.3).

A redemption is one unit of work: the code is claimed, checked, and what it buys
(the refresh family and the access token's jti) is stored with the claim, in one
transaction; the tokens are signed once it is committed. So a replay that comes
after it always finds what to revoke (B5), and nothing is signed for a redemption
that did not happen. That unit of work runs on a Session, which is synchronous:
it is the one worker-thread hop of the token endpoint (every other grant stays on
the event loop)."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass, replace

import anyio
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN

from userservice.db.authorization_codes import CodeRepository, ConsentRepository
from userservice.db.codec import utc as as_utc
from userservice.db.models import AuthorizationCode
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.refresh_tokens import RefreshTokenRepository
from userservice.db.revoked_tokens import deny
from userservice.db.users import UserRepository, user_record
from userservice.errors import OAuthError
from userservice.oauth.params import required
from userservice.records import StoredClient
from userservice.security.secrets import digest
from userservice.services.access_tokens import Grant
from userservice.services.assurance import loaded_amr
from userservice.services.audit import audit
from userservice.services.id_tokens import IdTokenService
from userservice.services.scopes import granted_scope
from userservice.services.tokens import Issuance, IssuedTokens, TokenService


def _invalid_grant() -> OAuthError:
    return OAuthError("invalid_grant", "The authorization code is invalid or expired.")


@dataclass(frozen=True, slots=True)
class _Redeemed:
    issuance: Issuance
    auth_time: int
    nonce: str | None


def _refusal(row: AuthorizationCode, redirect_uri: str | None, verifier: str) -> OAuthError | None:
    """Why a claimed code buys nothing, or None."""
    # RFC 6749 §4.1.3 (B7): the redirect URI of the authorization request, exactly.
    if row.redirect_uri and redirect_uri != row.redirect_uri:
        return _invalid_grant()
    if not row.code_challenge or row.code_challenge_method != "S256":
        # B4: a code without an S256 challenge never redeems (no PKCE downgrade).
        return OAuthError("invalid_request", "The code was issued without a challenge.")
    expected = create_s256_code_challenge(verifier).encode("ascii")
    # RFC 7636 §4.6, in constant time: the comparison says nothing of the challenge.
    if not hmac.compare_digest(expected, row.code_challenge.encode("utf-8")):
        return _invalid_grant()
    return None


class CodeExchange:
    def __init__(self, db: Storage, tokens: TokenService, id_tokens: IdTokenService) -> None:
        self.db = db
        self.tokens = tokens
        self.id_tokens = id_tokens

    async def exchange(self, client: StoredClient, params: dict[str, str]) -> IssuedTokens:
        code = required(params, "code")
        # B3: PKCE for every client; a request that cannot match is refused before
        # anything is claimed.
        verifier = required(params, "code_verifier")
        if not CODE_VERIFIER_PATTERN.fullmatch(verifier):
            raise OAuthError("invalid_request", "The code_verifier is malformed.")
        redirect_uri = params.get("redirect_uri")
        redeemed = await anyio.to_thread.run_sync(
            self._redeem, digest(code), client, redirect_uri, verifier
        )
        issued = self.tokens.signed(redeemed.issuance)
        if "openid" not in issued.scope.split():
            return issued
        id_token = self.id_tokens.create(
            redeemed.issuance.user,
            client.client_id,
            issued.scope,
            auth_time=redeemed.auth_time,
            nonce=redeemed.nonce,
            access_token=issued.access_token,
            amr=redeemed.issuance.grant.amr,
        )
        return replace(issued, id_token=id_token)

    def _redeem(
        self, code_digest: str, client: StoredClient, redirect_uri: str | None, verifier: str
    ) -> _Redeemed:
        now = dt.datetime.now(dt.UTC)
        with self.db.unit_of_work() as session:
            outcome = self._claim(session, code_digest, client, redirect_uri, verifier, now)
        if isinstance(outcome, OAuthError):
            # Raised after the commit: the claim, or a replay's revocation, stands.
            raise outcome
        return outcome

    def _claim(
        self,
        session: UnitOfWork,
        code_digest: str,
        client: StoredClient,
        redirect_uri: str | None,
        verifier: str,
        now: dt.datetime,
    ) -> _Redeemed | OAuthError:
        codes = CodeRepository(session)
        # B6: the conditional UPDATE lets exactly one concurrent redemption win.
        claimed = codes.claim(code_digest, client.client_id, now)
        row = codes.get(code_digest)
        if row is None or row.client_id != client.client_id:
            return _invalid_grant()  # B7: another client's code is as good as unknown
        if not claimed:
            # SQLite returns naive datetimes: compare in UTC, or a replay is a 500.
            if row.used_at is not None and as_utc(row.used_at) < now:
                _revoke_bought(session, row, now)
            return _invalid_grant()
        refusal = _refusal(row, redirect_uri, verifier)
        if refusal is not None:
            return refusal  # the code stays used: a guessed verifier gets one try
        user = UserRepository(session).get(row.user_id)
        # E7, L23: a code from a sign-in before the user's revocation mark (a
        # password change, sign out everywhere) is as dead as that sign-in's tokens.
        if user is None or not user.is_active or row.auth_time < user.tokens_valid_after:
            return _invalid_grant()
        record = user_record(user)
        try:
            scope = granted_scope(client, row.scope, record)
        except OAuthError as error:
            return error
        # S5: tokens of a grant withdrawn earlier stand only from the withdrawal on.
        mark = ConsentRepository(session).withdrawal_mark(record.id, client.client_id)
        # M5: the login's amr, as the session had it when the code was made.
        grant = Grant(row.auth_time, not_before=mark, amr=loaded_amr(row.amr))
        issuance = self.tokens.plan(record, client, scope, grant)
        if issuance.family is not None:
            RefreshTokenRepository(session).insert(issuance.family)
        codes.record_issued(code_digest, issuance.grant.family_id, issuance.jti)
        return _Redeemed(issuance, row.auth_time, row.nonce)


def _revoke_bought(session: UnitOfWork, row: AuthorizationCode, now: dt.datetime) -> None:
    # B5 / RFC 6749 §4.1.2: a code used twice was stolen; what it bought dies.
    if row.token_family_id is not None:
        RefreshTokenRepository(session).revoke_family(row.token_family_id, now)
    if row.access_jti:
        deny(session, row.access_jti, now + dt.timedelta(days=1))
    audit("code.reuse_detected", client=row.client_id, user=row.user_id)
