"""The checks of a passkey's answer to a sign-in challenge (M9): whose credential
it is, whether it verifies against the relying party of the public URL, and the
one unit of work that spends its challenge and advances the sign counter. Every
refusal is audited with the account and a reason, nothing else of the answer,
and answered the same way (InvalidPasskey)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import NoReturn

from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers.structs import (
    AuthenticationCredential,
    CredentialDeviceType,
    RegistrationCredential,
)

from userservice.db.models import Passkey, User
from userservice.db.passkeys import PasskeyRepository, spend_challenge
from userservice.db.ports import Storage
from userservice.errors import InvalidPasskey
from userservice.security import webauthn_challenges
from userservice.security.relying_party import RelyingParty
from userservice.services.audit import record
from userservice.services.client_address import printable_ip
from userservice.services.passkey_support import REFUSED, transports_of


@dataclass(frozen=True, slots=True)
class Found:
    id: uuid.UUID
    user_id: uuid.UUID
    public_key: bytes  # COSE
    backup_eligible: bool


class Assertions:
    def __init__(self, db: Storage, rp: RelyingParty | None) -> None:
        self.db = db
        self.rp = rp

    def registered(
        self,
        credential: RegistrationCredential,
        challenge: bytes,
        user_id: uuid.UUID,
        name: str,
        ip: str | None,
    ) -> Passkey:
        """The new passkey (not stored yet) when the attestation verifies against
        the relying party of the public URL; refused and audited otherwise."""
        assert self.rp is not None
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
            )
        except Exception:
            self.refused(user_id, ip, "registration", "verification")
        return Passkey(
            user_id=user_id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            # BE flag (WebAuthn L2 §6.1): a synced passkey, amr swk (M10).
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
            transports=transports_of(credential),
            aaguid=verified.aaguid,
            name=name,
            created_at=_now(),
        )

    def owner(
        self,
        credential: AuthenticationCredential,
        user_id: uuid.UUID | None,
        ip: str | None,
        expiry: int | None,
        during: str,
    ) -> Found:
        """The passkey of the answer's credential id, of `user_id` when given (the
        second step), of an active account; refused (and audited) otherwise."""
        if expiry is None:
            self.refused(user_id, ip, during, "challenge")
        with self.db.unit_of_work(read_only=True) as uow:
            found = PasskeyRepository(uow).by_credential_id(credential.raw_id)
            owner = uow.get(User, found.user_id) if found is not None else None
            if found is None or owner is None:
                self.refused(user_id, ip, during, "unknown_credential")
            if user_id is not None and found.user_id != user_id:
                self.refused(user_id, ip, during, "unknown_credential")
            handle = credential.response.user_handle
            # WebAuthn L2 §7.2 step 6: with no account named beforehand (empty
            # allowCredentials) the user handle is required; present, it must
            # name the credential's owner.
            if (handle is None and user_id is None) or (
                handle is not None and handle != found.user_id.bytes
            ):
                self.refused(found.user_id, ip, during, "user_handle")
            if not owner.is_active:
                self.refused(found.user_id, ip, during, "disabled")
            return Found(found.id, found.user_id, bytes(found.public_key), found.backup_eligible)

    def verify(
        self,
        credential: AuthenticationCredential,
        challenge: bytes,
        passkey: Found,
        expiry: int | None,
        ip: str | None,
        during: str,
    ) -> bool:
        """Verify the assertion, then spend the challenge and advance the counter in
        one unit of work. The backup eligibility stored at registration."""
        assert self.rp is not None and expiry is not None
        owner = passkey.user_id
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin,
                credential_public_key=passkey.public_key,
                # The counter is checked by db/passkeys.advance, atomically, so that
                # a clone racing the original is refused too (and audited apart).
                credential_current_sign_count=0,
                require_user_verification=during == "sign_in",
            )
        except Exception:
            self.refused(owner, ip, during, "verification")
        try:
            with self.db.unit_of_work() as uow:
                if not spend_challenge(
                    uow, webauthn_challenges.digest(challenge), expiry_time(expiry)
                ):
                    raise _Refusal("challenge_spent")
                repository = PasskeyRepository(uow)
                if not repository.advance(
                    passkey.id, verified.new_sign_count, verified.credential_backed_up, _now()
                ):
                    # WebAuthn L2 §6.1.1: a counter that did not grow betrays a
                    # copy of the key; raising rolls the spent challenge back too.
                    raise _Refusal("counter")
        except _Refusal as refusal:
            if refusal.reason == "counter":
                with self.db.unit_of_work() as uow:
                    record(uow, "passkey.counter_rejected", user=owner, ip=printable_ip(ip))
            self.refused(owner, ip, during, refusal.reason)
        return passkey.backup_eligible

    def verified(self, user_id: uuid.UUID, ip: str | None, during: str) -> None:
        """Audit a passkey that answered for this account's second factor."""
        with self.db.unit_of_work() as uow:
            record(
                uow,
                "factor.verified",
                user=user_id,
                ip=printable_ip(ip),
                method="passkey",
                during=during,
            )

    def refused(
        self, user_id: uuid.UUID | None, ip: str | None, during: str, reason: str
    ) -> NoReturn:
        """Audit a refused ceremony (the user id and a reason: nothing else about
        the answer) and refuse it with the one message for every cause (M9)."""
        # A confirmation (M7) is a second-factor check like the sign-in's second step.
        event = {
            "sign_in": "login.failed",
            "second_factor": "factor.failed",
            "confirm": "factor.failed",
        }.get(during, "passkey.failed")
        with self.db.unit_of_work() as uow:
            record(
                uow,
                event,
                user=user_id,
                ip=printable_ip(ip),
                method="passkey",
                during=during,
                reason=reason,
            )
        raise InvalidPasskey(REFUSED)


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expiry_time(expiry: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(expiry, dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
