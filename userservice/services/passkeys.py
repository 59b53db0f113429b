"""Passkeys (M9, M10): WebAuthn Level 2 credentials, registered by verified
accounts, used alone (passwordless, user verification required) or as the second
factor after the password.

The relying party (its id and origin) comes from the configured public URL only,
never from a request. Challenges are stateless (security/webauthn_challenges.py)
and spent in the database when answered. Synchronous: callers use
anyio.to_thread.run_sync. Every change is one unit of work with its audit event,
its revocations and its mail: all commit, or none does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from userservice.db.factors import (
    MFA_REQUIRED_FOR,
    FactorRepository,
    PolicyRepository,
    has_second_factor,
)
from userservice.db.models import User
from userservice.db.passkeys import PasskeyRepository, spend_challenge
from userservice.db.ports import Storage
from userservice.errors import (
    Conflict,
    EmailNotVerified,
    InvalidPasskey,
    NotFound,
    PasskeysUnavailable,
)
from userservice.security import recovery_codes, webauthn_challenges
from userservice.security.relying_party import RelyingParty
from userservice.security.throttle import LoginThrottle
from userservice.services.account_mail import Mailer
from userservice.services.assurance import passkey_amr, passkey_method
from userservice.services.at_rest import AtRest
from userservice.services.audit import record
from userservice.services.client_address import printable_ip
from userservice.services.factor_support import FactorNotices, end_everything
from userservice.services.mfa_rule import applies, effective
from userservice.services.passkey_assertions import Assertions, expiry_time
from userservice.services.passkey_limits import charged
from userservice.services.passkey_support import (
    KEEP_ONE,
    NO_PASSKEY,
    REFUSED,
    UNAVAILABLE,
    UNVERIFIED,
    clean_name,
    creation_options,
    half_login_binding,
    load_challenge_key,
    locked_user,
    parsed_authentication,
    parsed_registration,
    registration_binding,
    request_options,
)
from userservice.services.passkey_types import PasskeyAdded as PasskeyAdded
from userservice.services.passkey_types import PasskeyProof as PasskeyProof
from userservice.services.passkey_types import PasskeySignIn as PasskeySignIn
from userservice.services.passkey_types import PasskeyView as PasskeyView


class Passkeys:
    def __init__(
        self,
        db: Storage,
        at_rest: AtRest,
        mailer: Mailer,
        rp: RelyingParty | None,
        *,
        challenge_ttl: int,
        clock: Callable[[], float] = time.time,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.db = db
        self.at_rest = at_rest
        self.notices = FactorNotices(mailer)
        self.rp = rp
        self.ttl = challenge_ttl
        # The challenges' clock (unix seconds): a test mints with an earlier one.
        self.clock = clock
        self._key: bytes | None = None
        self.assertions = Assertions(db, rp)
        # The sign-in limits (S12): passwordless attempts count per address.
        self.throttle = throttle

    @property
    def available(self) -> bool:
        return self.rp is not None

    def ensure(self) -> None:
        """Load the challenge key, creating it on first start (at start-up, not on
        the event loop; a key that does not open stops the start)."""
        self._key = load_challenge_key(self.db, self.at_rest)

    # -- registration ------------------------------------------------------------------

    def registration_options(
        self,
        user_id: uuid.UUID,
        *,
        half_login_id: str | None = None,
        session_id: str | None = None,
    ) -> str:
        rp = self._rp()
        with self.db.unit_of_work(read_only=True) as uow:
            user = uow.get(User, user_id)
            if user is None:
                raise NotFound("No such user.")
            if not user.email_verified:
                # M3: an unproven address cannot be told of factor changes.
                raise EmailNotVerified(UNVERIFIED)
            email = user.email
            existing = PasskeyRepository(uow).credential_ids_for_user(user_id)
        binding = registration_binding(user_id, half_login_id=half_login_id, session_id=session_id)
        challenge = self._mint(webauthn_challenges.REGISTER, binding)
        return creation_options(rp, user_id, email, challenge, self.ttl, existing)

    def register(
        self,
        user_id: uuid.UUID,
        response_json: str,
        name: str,
        *,
        ip: str | None,
        locale: str,
        half_login_id: str | None = None,
        session_id: str | None = None,
    ) -> PasskeyAdded:
        self._rp()
        cleaned = clean_name(name)
        credential, challenge = parsed_registration(response_json)
        binding = registration_binding(user_id, half_login_id=half_login_id, session_id=session_id)
        expiry = self._check(challenge, webauthn_challenges.REGISTER, binding)
        if expiry is None:
            self.assertions.refused(user_id, ip, "registration", "challenge")
        passkey = self.assertions.registered(credential, challenge, user_id, cleaned, ip)
        codes = recovery_codes.new_codes()
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            if not user.email_verified:
                raise EmailNotVerified(UNVERIFIED)
            if not spend_challenge(uow, webauthn_challenges.digest(challenge), expiry_time(expiry)):
                raise InvalidPasskey(REFUSED)
            first = not has_second_factor(uow, user_id)
            PasskeyRepository(uow).add(passkey)
            if first:
                # M2: recovery codes go with the first factor, shown once.
                FactorRepository(uow).replace_codes(
                    user_id,
                    [recovery_codes.code_digest(code) for code in codes],
                    passkey.created_at,
                )
            ended = end_everything(uow, user)
            record(
                uow,
                "factor.added",
                user=user_id,
                ip=printable_ip(ip),
                kind="passkey",
                synced=passkey.backup_eligible,
                sessions=ended,
            )
            self.notices.send(uow, "passkey_added", user, locale, ip)
            added = PasskeyAdded(PasskeyView.of(passkey), codes if first else None)
        return added

    # -- sign-in -------------------------------------------------------------------------

    def sign_in_options(self) -> str:
        rp = self._rp()
        challenge = self._mint(webauthn_challenges.SIGN_IN, "")
        # M10: a passkey alone counts as multi-factor only with the user verified.
        return request_options(rp, challenge, self.ttl, [], user_verified=True)

    def sign_in(self, response_json: str, *, ip: str | None) -> PasskeySignIn:
        with charged(self.throttle, ip):
            return self._sign_in(response_json, ip)

    def _sign_in(self, response_json: str, ip: str | None) -> PasskeySignIn:
        credential, challenge = parsed_authentication(response_json)
        expiry = self._check(challenge, webauthn_challenges.SIGN_IN, "")
        passkey = self.assertions.owner(credential, None, ip, expiry, "sign_in")
        backup_eligible = self.assertions.verify(
            credential, challenge, passkey, expiry, ip, "sign_in"
        )
        amr = passkey_amr(backup_eligible, user_verified=True)
        with self.db.unit_of_work() as uow:
            record(
                uow, "login.succeeded", user=passkey.user_id, ip=printable_ip(ip), method="passkey"
            )
        return PasskeySignIn(passkey.user_id, amr, int(time.time()))

    def second_factor_options(self, user_id: uuid.UUID, half_login_id: str) -> str:
        binding = half_login_binding(half_login_id)
        return self._bound_options(user_id, webauthn_challenges.SECOND_FACTOR, binding)

    def verify_second_factor(
        self, user_id: uuid.UUID, response_json: str, half_login_id: str, *, ip: str | None
    ) -> str:
        binding = half_login_binding(half_login_id)
        purpose = webauthn_challenges.SECOND_FACTOR
        return self._verify_bound(user_id, response_json, purpose, binding, ip, "second_factor")

    def confirmation_options(self, user_id: uuid.UUID, session_id: str) -> str:
        """M7, M9: one of the account's passkeys where a signed-in page asks for
        the second factor again, bound to this browser's session."""
        binding = half_login_binding(session_id)
        return self._bound_options(user_id, webauthn_challenges.CONFIRM, binding)

    def verify_confirmation(
        self, user_id: uuid.UUID, response_json: str, session_id: str, *, ip: str | None
    ) -> PasskeyProof:
        binding = half_login_binding(session_id)
        purpose = webauthn_challenges.CONFIRM
        method = self._verify_bound(user_id, response_json, purpose, binding, ip, "confirm")
        return PasskeyProof(user_id, method)

    def _bound_options(self, user_id: uuid.UUID, purpose: str, binding: str) -> str:
        rp = self._rp()
        with self.db.unit_of_work(read_only=True) as uow:
            existing = PasskeyRepository(uow).credential_ids_for_user(user_id)
        challenge = self._mint(purpose, binding)
        return request_options(rp, challenge, self.ttl, existing, user_verified=False)

    def _verify_bound(
        self,
        user_id: uuid.UUID,
        response_json: str,
        purpose: str,
        binding: str,
        ip: str | None,
        during: str,
    ) -> str:
        """The amr method of this account's passkey answering a challenge of
        `purpose` bound to `binding`; InvalidPasskey (audited) otherwise."""
        credential, challenge = parsed_authentication(response_json)
        expiry = self._check(challenge, purpose, binding)
        passkey = self.assertions.owner(credential, user_id, ip, expiry, during)
        backup_eligible = self.assertions.verify(credential, challenge, passkey, expiry, ip, during)
        self.assertions.verified(user_id, ip, during)
        return passkey_method(backup_eligible)

    # -- management -------------------------------------------------------------------

    def list(self, user_id: uuid.UUID) -> list[PasskeyView]:
        with self.db.unit_of_work(read_only=True) as uow:
            rows = PasskeyRepository(uow).list_for_user(user_id)
            return [PasskeyView.of(row) for row in rows]

    def rename(
        self, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str, *, ip: str | None
    ) -> None:
        cleaned = clean_name(name)
        with self.db.unit_of_work() as uow:
            if not PasskeyRepository(uow).rename(user_id, passkey_id, cleaned):
                raise NotFound(NO_PASSKEY)
            record(uow, "passkey.renamed", user=user_id, ip=printable_ip(ip))

    def remove(
        self, user_id: uuid.UUID, passkey_id: uuid.UUID, *, ip: str | None, locale: str
    ) -> None:
        with self.db.unit_of_work() as uow:
            user = locked_user(uow, user_id)
            # The policy's row is held until this commits (as services/factors.py
            # does), so a switch at the same moment comes after this removal.
            rule = effective(PolicyRepository(uow).get_for_share(MFA_REQUIRED_FOR))
            if not PasskeyRepository(uow).delete(user_id, passkey_id):
                raise NotFound(NO_PASSKEY)
            left = has_second_factor(uow, user_id)
            if not left and applies(rule, is_admin=user.is_admin):
                # M8, M13: under the rule the last factor stays; raising rolls back.
                raise Conflict(KEEP_ONE)
            if not left:
                # M2: with no factor left, codes would be a second password.
                FactorRepository(uow).delete_codes(user_id)
            ended = end_everything(uow, user)
            record(
                uow,
                "factor.removed",
                user=user_id,
                ip=printable_ip(ip),
                kind="passkey",
                sessions=ended,
            )
            self.notices.send(uow, "passkey_removed", user, locale, ip)

    # -- the ceremonies' parts ---------------------------------------------------------

    def _rp(self) -> RelyingParty:
        if self.rp is None:
            raise PasskeysUnavailable(UNAVAILABLE)
        return self.rp

    def _key_now(self) -> bytes:
        if self._key is None:
            # Embedded use without the start-up hook (a test building services).
            self.ensure()
        assert self._key is not None
        return self._key

    def _mint(self, purpose: str, binding: str) -> bytes:
        return webauthn_challenges.mint(self._key_now(), purpose, binding, self.clock(), self.ttl)

    def _check(self, challenge: bytes, purpose: str, binding: str) -> int | None:
        return webauthn_challenges.check(self._key_now(), challenge, purpose, binding, self.clock())
