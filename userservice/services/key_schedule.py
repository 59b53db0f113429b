"""When a signing key signs, stops signing and stops verifying: pure rules over the
stored rows, shared by the key store, the admin API and the command line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from userservice.db.signing_keys import StoredKey
from userservice.security.jwt import LEEWAY_SECONDS
from userservice.settings import Settings

KeyState = Literal["pending", "active", "retiring", "retired"]


def grace_seconds(max_token_ttl: float, reload_seconds: float) -> float:
    """How long a retired key must keep verifying after its `retired_at`. No replica
    signs with it once it has seen the hand-over, which it does within
    `reload_seconds`; the last token then lives `max_token_ttl` and is accepted
    `LEEWAY_SECONDS` past its `exp`."""
    return max_token_ttl + reload_seconds + LEEWAY_SECONDS


def settings_grace_seconds(settings: Settings) -> float:
    longest = max(settings.access_token_ttl_seconds, settings.id_token_ttl_seconds)
    return grace_seconds(longest, settings.signing_key_reload_seconds)


def publication_seconds(jwks_max_age: float, reload_seconds: float) -> float:
    """How long a new key is published before it signs (N4): every replica serves it
    within `reload_seconds`, and a JWKS fetched before then is stale `jwks_max_age`
    later at the latest. `LEEWAY_SECONDS` more covers the clocks of the replicas
    and relying parties (the leeway we grant theirs) and the moments between the
    rotation's clock reading and its commit."""
    return jwks_max_age + reload_seconds + LEEWAY_SECONDS


def verify_until(key: StoredKey, grace: float) -> dt.datetime | None:
    if key.retired_at is None:
        return None
    return key.retired_at + dt.timedelta(seconds=grace)


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    alg: str
    created_at: dt.datetime
    state: KeyState
    # When it starts (started) signing; None while it waits behind an older key
    # that no rotation has retired yet.
    signs_from: dt.datetime | None
    # When it stops (stopped) signing: its `retired_at`.
    signs_until: dt.datetime | None
    # End of verification and publication; None while no rotation has retired it.
    until: dt.datetime | None


def describe_keys(stored: Sequence[StoredKey], now: dt.datetime, grace: float) -> list[KeyInfo]:
    """Each key's state and times (`stored` oldest first, as load_stored gives them),
    by the rule KeyRing signs by: of an algorithm, the oldest key not retired at
    `now` signs, so a key starts when every older one has handed over."""
    infos = []
    for index, key in enumerate(stored):
        handovers = [k.retired_at for k in stored[:index] if k.alg == key.alg]
        signs_from: dt.datetime | None = None
        if None not in handovers:
            signs_from = max([key.created_at, *(h for h in handovers if h is not None)])
        until = verify_until(key, grace)
        state: KeyState
        if until is not None and now >= until:
            state = "retired"
        elif key.retired_at is not None and now >= key.retired_at:
            state = "retiring"
        elif signs_from is not None and now >= signs_from:
            state = "active"
        else:
            state = "pending"
        infos.append(
            KeyInfo(key.kid, key.alg, key.created_at, state, signs_from, key.retired_at, until)
        )
    return infos
