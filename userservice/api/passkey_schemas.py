"""Bodies of the passkey API (api/passkeys.py). Unknown request fields are refused
(G4); no body carries a public key or a credential id, only the passkey's name
and dates (M9)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from userservice.api.schemas import Strict
from userservice.services.passkeys import PasskeyView

PasskeyName = Field(
    min_length=1,
    max_length=64,
    description="A name of the user's choosing, to tell passkeys apart (at most 64 characters).",
    examples=["Work laptop"],
)


class PasskeyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(description="The last sign-in with it; null if none.")
    synced: bool = Field(
        description="The authenticator may copy it to the user's other devices (a synced "
        "passkey, amr `swk`); false for one bound to its device (amr `hwk`)."
    )

    @classmethod
    def of(cls, view: PasskeyView) -> PasskeyOut:
        return cls(
            id=view.id,
            name=view.name,
            created_at=view.created_at,
            last_used_at=view.last_used_at,
            synced=view.synced,
        )


class PasskeysOut(BaseModel):
    passkeys: list[PasskeyOut] = Field(description="Oldest first.")


class PasskeyRegistration(Strict):
    name: str = PasskeyName
    response: dict[str, Any] = Field(
        description="What `navigator.credentials.create()` returned, as its "
        "`toJSON()` gives it (WebAuthn Level 3 RegistrationResponseJSON: `id`, "
        "`rawId`, `type`, `response.clientDataJSON`, `response.attestationObject`, "
        "base64url)."
    )


class PasskeyRename(Strict):
    name: str = PasskeyName


class RegisteredPasskey(PasskeyOut):
    recovery_codes: list[str] | None = Field(
        default=None,
        description="Ten recovery codes when this is the account's first second factor, "
        "shown this once; null otherwise.",
    )
