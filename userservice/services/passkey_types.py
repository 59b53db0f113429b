"""What the passkey service hands its callers (services/passkeys.py re-exports
them): a passkey as the account page lists it, a passkey just added, a
passwordless sign-in, and the proof of a passkey where a signed-in page asks for
the second factor again."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from userservice.db.codec import utc
from userservice.db.models import Passkey


@dataclass(frozen=True, slots=True)
class PasskeyView:
    id: uuid.UUID
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    synced: bool  # backup_eligible (amr swk)

    @classmethod
    def of(cls, row: Passkey) -> PasskeyView:
        last = utc(row.last_used_at) if row.last_used_at is not None else None
        return cls(row.id, row.name, utc(row.created_at), last, row.backup_eligible)


@dataclass(frozen=True, slots=True)
class PasskeyAdded:
    """A registration's outcome: the new passkey as stored (no caller reads the
    list again, where a concurrent removal could leave nothing to find), and ten
    new recovery codes when it is the account's first second factor (M2, shown
    once), else None."""

    passkey: PasskeyView
    recovery_codes: list[str] | None


@dataclass(frozen=True, slots=True)
class PasskeyProof:
    """This account's passkey answered a challenge bound to the caller's browser
    session just now (M7, M9): what a code would prove where a signed-in page asks
    for the second factor again. Made only by Passkeys.verify_confirmation; no
    request body can hold one."""

    user_id: uuid.UUID
    method: str  # hwk or swk (M10)


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    user_id: uuid.UUID
    amr: tuple[str, ...]
    auth_time: int
