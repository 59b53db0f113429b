"""A software WebAuthn authenticator (Level 2) for tests: real ES256 keys
(`cryptography`), real CBOR (`cbor2`), attestation "none", so the server's
py_webauthn verifies exactly what a browser would hand it.

It answers the options JSON the server sends (navigator.credentials.create /
get) with RegistrationResponseJSON / AuthenticationResponseJSON dicts. Knobs let a
test play a broken or hostile authenticator: another origin or RP ID, no user
verification, a counter that does not grow."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes(16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    backup_eligible: bool
    counter: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty EC2
                3: -7,  # alg ES256
                -1: 1,  # crv P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    credentials: list[Credential] = field(default_factory=list)
    # Counters kept at zero (as many platform authenticators do) when False.
    counts: bool = True

    def create(
        self,
        options_json: str | dict[str, Any],
        origin: str,
        *,
        user_verified: bool = True,
        backup_eligible: bool = False,
        resident: bool = True,
        rp_id: str | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """RegistrationResponseJSON for these creation options. `rp_id` overrides
        the options' (a phishing page's authenticator would scope to its own);
        `credential_id` makes a credential with an id chosen by the test."""
        options = _loaded(options_json)
        scope = rp_id or options["rp"]["id"]
        excluded = {item["id"] for item in options.get("excludeCredentials", [])}
        if credential_id is None and any(
            b64url(c.id) in excluded for c in self.credentials if c.rp_id == scope
        ):
            raise ValueError("InvalidStateError: a credential of this authenticator is excluded")
        credential = Credential(
            credential_id or os.urandom(32),
            ec.generate_private_key(ec.SECP256R1()),
            scope,
            unb64url(options["user"]["id"]),
            backup_eligible,
        )
        if resident:
            self.credentials.append(credential)
        flags = UP | AT | (UV if user_verified else 0)
        if backup_eligible:
            flags |= BE | BS
        attested = AAGUID + struct.pack(">H", len(credential.id)) + credential.id
        auth_data = (
            hashlib.sha256(scope.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", credential.counter)
            + attested
            + credential.cose_key()
        )
        client_data = _client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options_json: str | dict[str, Any],
        origin: str,
        *,
        user_verified: bool = True,
        counter_step: int = 1,
        credential: Credential | None = None,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """AuthenticationResponseJSON for these request options, signed by
        `credential` or the first one the options allow for their RP ID."""
        options = _loaded(options_json)
        scope = rp_id or options["rpId"]
        chosen = credential or self.pick(options, scope)
        if self.counts:
            chosen.counter = max(0, chosen.counter + counter_step)
        flags = UP | (UV if user_verified else 0)
        if chosen.backup_eligible:
            flags |= BE | BS
        auth_data = (
            hashlib.sha256(scope.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", chosen.counter)
        )
        client_data = _client_data("webauthn.get", options["challenge"], origin)
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(chosen.id),
            "rawId": b64url(chosen.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(chosen.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def pick(self, options: dict[str, Any], scope: str) -> Credential:
        allowed = {item["id"] for item in options.get("allowCredentials", [])}
        for candidate in self.credentials:
            if candidate.rp_id == scope and (not allowed or b64url(candidate.id) in allowed):
                return candidate
        raise LookupError("NotAllowedError: no credential of this authenticator fits")


def challenge_of(options_json: str | dict[str, Any]) -> bytes:
    return unb64url(_loaded(options_json)["challenge"])


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()


def _loaded(options: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(options) if isinstance(options, str) else options
