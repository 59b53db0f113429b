"""A passkey as the passkey service leaves one after registration, inserted through
the ORM, for tests of what a passkey changes elsewhere (the sign-in rule, recovery
codes); the WebAuthn ceremony itself is tested with the passkey service."""

from __future__ import annotations

import datetime as dt
import os
import uuid

from userservice.db.models import Passkey
from userservice.wiring import Services


def add_passkey(services: Services, user_id: uuid.UUID, *, synced: bool = False) -> uuid.UUID:
    """A stored passkey of `user_id`: synced (backup eligible, amr swk) or not (hwk)."""
    passkey_id = uuid.uuid4()
    with services.accounts.db.unit_of_work() as uow:
        uow.add(
            Passkey(
                id=passkey_id,
                user_id=user_id,
                credential_id=os.urandom(32),
                public_key=os.urandom(77),
                sign_count=0,
                backup_eligible=synced,
                backed_up=synced,
                transports="internal",
                aaguid=None,
                name="laptop",
                created_at=dt.datetime.now(dt.UTC),
                last_used_at=None,
            )
        )
    return passkey_id
