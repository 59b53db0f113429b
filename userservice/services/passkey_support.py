"""What services/passkeys.py needs around py_webauthn (M9): the shared challenge
key, reading an untrusted browser answer without ever failing loudly, and the
credential descriptors the options name."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from userservice.db.models import User
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.server_secrets import get_or_create, replace_value
from userservice.db.users import UserRepository
from userservice.errors import InvalidInput, InvalidPasskey, NotFound
from userservice.security.relying_party import RelyingParty
from userservice.services.at_rest import AtRest

KEY_NAME = "webauthn_challenge_key"
# WebAuthn L2 §5.8.3: a credential id is at most 1023 bytes; a JSON answer is a
# few kilobytes at most (an attestation certificate chain is the large part).
MAX_RESPONSE_CHARS = 64 * 1024
REFUSED = "The passkey could not be verified: try again."
UNVERIFIED = "Verify your email address before adding a passkey."
UNAVAILABLE = "Passkeys need the service's public URL to name a domain, not an IP address."
KEEP_ONE = (
    "Every account under the sign-in rule must keep a second factor: add another "
    "passkey or an authenticator app before removing this one."
)
NO_PASSKEY = "No such passkey."
_TRANSPORTS = {item.value for item in AuthenticatorTransport}

log = logging.getLogger("userservice.passkeys")


def load_challenge_key(db: Storage, at_rest: AtRest) -> bytes:
    """The HMAC key of WebAuthn challenges: a server secret every replica shares
    (a challenge minted by one is checked by another), sealed at rest (S11), made
    on first start. As services/devices.py loads the device-cookie key."""
    row = f"server secret {KEY_NAME}"
    fresh = at_rest.protect(_b64(secrets.token_bytes(32)), row)
    stored = get_or_create(db, KEY_NAME, fresh)
    key = at_rest.reveal(stored, row)
    if at_rest.needs_sealing(stored):
        replace_value(db, KEY_NAME, stored, at_rest.protect(key, row))
        log.info("encrypted the server secret %s stored in plaintext", KEY_NAME)
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


def parsed_registration(response_json: str) -> tuple[RegistrationCredential, bytes]:
    """The credential and the challenge its clientDataJSON answers; InvalidPasskey
    for anything malformed (the body is the browser's, or an attacker's: never a
    500)."""
    return _parsed(parse_registration_credential_json, response_json)


def parsed_authentication(response_json: str) -> tuple[AuthenticationCredential, bytes]:
    return _parsed(parse_authentication_credential_json, response_json)


_Credential = TypeVar("_Credential", RegistrationCredential, AuthenticationCredential)


def _parsed(parse: Callable[[str], _Credential], response_json: str) -> tuple[_Credential, bytes]:
    if len(response_json) > MAX_RESPONSE_CHARS:
        raise InvalidPasskey(REFUSED)
    try:
        credential = parse(response_json)
        challenge = parse_client_data_json(credential.response.client_data_json).challenge
    except Exception:
        raise InvalidPasskey(REFUSED) from None
    return credential, challenge


def half_login_binding(half_login_id: str) -> str:
    """The second-factor challenge's binding: the half-login's digest, so that a
    challenge answered in one browser's sign-in cannot finish another's (M6).
    A session's id is bound the same way for a confirmation (M7)."""
    return hashlib.sha256(half_login_id.encode()).hexdigest()


def registration_binding(
    user_id: uuid.UUID, *, half_login_id: str | None = None, session_id: str | None = None
) -> str:
    """A registration is bound to its account and to where it was asked for (M9):
    a forced enrolment's half-login (M8, M13), an account page's browser session
    (as a confirmation is, M7), or else the JSON API (no browser state: a purpose
    of its own). A challenge minted for one of them registers in no other, nor
    one of another browser's sign-in or session."""
    if half_login_id is not None:
        return f"{user_id.hex}/{half_login_binding(half_login_id)}"
    if session_id is not None:
        return f"{user_id.hex}/session/{half_login_binding(session_id)}"
    return f"{user_id.hex}/api"


def request_options(
    rp: RelyingParty,
    challenge: bytes,
    ttl: int,
    allowed: list[tuple[bytes, str | None]],
    *,
    user_verified: bool,
) -> str:
    """PublicKeyCredentialRequestOptions (JSON): `allowed` names the account's
    passkeys (empty for a discoverable sign-in); user verification required or
    preferred."""
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=ttl * 1000,
        allow_credentials=descriptors(allowed),
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if user_verified
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return options_to_json(options)


def descriptors(stored: list[tuple[bytes, str | None]]) -> list[PublicKeyCredentialDescriptor]:
    """excludeCredentials / allowCredentials: each passkey's id, with the
    transports its authenticator reported (a hint; unknown values dropped)."""
    found = []
    for credential_id, transports in stored:
        names = [name for name in (transports or "").split() if name in _TRANSPORTS]
        found.append(
            PublicKeyCredentialDescriptor(
                id=credential_id,
                transports=[AuthenticatorTransport(name) for name in names] or None,
            )
        )
    return found


def creation_options(
    rp: RelyingParty,
    user_id: uuid.UUID,
    email: str,
    challenge: bytes,
    ttl: int,
    existing: list[tuple[bytes, str | None]],
) -> str:
    """PublicKeyCredentialCreationOptions (JSON) for a new passkey of this account:
    the user handle is the account's id (never the address, WebAuthn L2 §14.6.1)."""
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=email,
        user_id=user_id.bytes,
        user_display_name=email,
        challenge=challenge,
        timeout=ttl * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            # Discoverable, so that a passwordless sign-in finds the account.
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=descriptors(existing),
    )
    return options_to_json(options)


def transports_of(credential: RegistrationCredential) -> str | None:
    names = [item.value for item in credential.response.transports or []]
    joined = " ".join(dict.fromkeys(names))
    return joined[:128] or None


def clean_name(name: Any) -> str:
    """A passkey's name as stored: trimmed, 1 to 64 characters, no control
    characters (it is shown on pages and in mails)."""
    if not isinstance(name, str):
        raise InvalidInput("Give the passkey a name.")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("Give the passkey a name.")
    if len(cleaned) > 64:
        raise InvalidInput("A passkey's name has at most 64 characters.")
    if any(ord(char) < 32 or ord(char) == 127 for char in cleaned):
        raise InvalidInput("A passkey's name cannot hold control characters.")
    return cleaned


def locked_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    """The account's row, locked until the unit of work ends (a change of its
    factors is ordered with any other)."""
    user = UserRepository(uow).get_for_update(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
