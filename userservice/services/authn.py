"""Who is calling: a bearer access token or, as a fallback, HTTP Basic credentials."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from userservice.db.ports import Storage
from userservice.errors import InvalidToken
from userservice.records import UserRecord
from userservice.services.access_tokens import AccessTokenCheck
from userservice.services.accounts import AccountService
from userservice.services.assurance import PASSWORD_ONLY
from userservice.services.keys import KeyStore
from userservice.services.policy import Caller
from userservice.services.scopes import IN_PERSON


@dataclass(frozen=True, slots=True)
class Principal:
    user: UserRecord
    scopes: frozenset[str]
    client_id: str | None
    caller: Caller
    # When the user last proved who they are (RFC 9470 §6); None if unknown.
    auth_time: int | None
    # How (RFC 8176 amr, M5): the step-up rule asks for a multi-factor login (M12).
    amr: tuple[str, ...] = PASSWORD_ONLY

    @property
    def has_admin_role(self) -> bool:
        # The live role (G5: removal takes effect on the next request).
        return self.user.is_admin

    @property
    def is_admin(self) -> bool:
        # Both the live role and the token's scope.
        return self.user.is_admin and "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    """A client acting for itself (client_credentials): no user behind it."""

    client_id: str
    scopes: frozenset[str]
    caller: Caller = Caller.SERVICE
    auth_time: int | None = None
    has_admin_role: bool = False
    amr: tuple[str, ...] = ()  # no user logged in


class Authenticator:
    def __init__(self, db: Storage, keys: KeyStore, accounts: AccountService, issuer: str) -> None:
        self.db = db
        self.keys = keys
        self.accounts = accounts
        self.issuer = issuer
        self.check = AccessTokenCheck(db, keys, issuer)

    async def from_bearer(self, token: str) -> Principal | ServicePrincipal:
        """A user's token, or a client's own (RFC 9068 §2.2: sub is the client_id)."""
        checked = await self.check.check(token)
        if checked is None:
            raise InvalidToken("Invalid access token.")
        claims = checked.claims
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        if checked.standing is None:
            return ServicePrincipal(client_id=str(claims["client_id"]), scopes=scopes)
        client_id = str(claims.get("client_id", ""))
        auth_time = claims.get("auth_time")
        return Principal(
            user=checked.standing.user,
            scopes=scopes,
            client_id=client_id or None,
            caller=Caller.FIRST_PARTY if checked.standing.first_party else Caller.THIRD_PARTY,
            auth_time=auth_time if isinstance(auth_time, int) else None,
            amr=_amr(claims.get("amr")),
        )

    async def has_second_factor(self, user_id: uuid.UUID) -> bool:
        """For a step-up decision (M12): on the event loop, one indexed read, made
        only for a sensitive operation whose login is not recent and multi-factor."""
        has_factor, _policy = await self.db.users.second_factor_state(user_id)
        return has_factor

    async def from_basic(self, email: str, password: str, ip: str) -> Principal:
        # argon2 runs on the hasher's own threads, never on the event loop.
        user = await self.accounts.authenticate(email, password, ip)
        # The password was presented with this very request: a login just now.
        return Principal(
            user=user,
            scopes=IN_PERSON,
            client_id=None,
            caller=Caller.IN_PERSON,
            auth_time=int(time.time()),
            amr=PASSWORD_ONLY,
        )


def _amr(claim: object) -> tuple[str, ...]:
    """The token's amr claim (RFC 8176 §1: a JSON array of strings); anything else
    counts as the password alone, the weakest login, so that a malformed claim can
    never pass for a second factor (M12)."""
    if isinstance(claim, list) and claim and all(isinstance(item, str) for item in claim):
        return tuple(claim)
    return PASSWORD_ONLY
