"""What the passkey service hands its callers (services/passkeys.py re-exports
them): a passkey as the account page lists it, a passwordless sign-in, and the
proof of a passkey where a signed-in page asks for the second factor again."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PasskeyView:
    id: uuid.UUID
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    synced: bool  # backup_eligible (amr swk)


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
