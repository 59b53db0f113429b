"""Who must sign in with a second factor (M8): nobody by rule (`none`, each user
chooses), or every administrator (`admins`). Set at run time by an administrator
and kept in the database, so that every replica applies the same rule."""

from __future__ import annotations

import uuid

from userservice.db.factors import MFA_REQUIRED_FOR, PolicyRepository
from userservice.db.ports import Storage
from userservice.errors import InvalidInput
from userservice.services.audit import record
from userservice.services.client_address import printable_ip

REQUIRED_FOR = ("none", "admins")
DEFAULT = "none"


def effective(stored: str | None) -> str:
    """An unknown stored value (a later version's) reads as the stricter rule."""
    if stored is None:
        return DEFAULT
    return stored if stored in REQUIRED_FOR else "admins"


class MfaPolicy:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def required_for(self) -> str:
        with self.db.unit_of_work(read_only=True) as uow:
            return effective(PolicyRepository(uow).get(MFA_REQUIRED_FOR))

    def set_required_for(
        self, value: str, *, actor_id: uuid.UUID | None, ip: str | None, via: str | None = None
    ) -> None:
        """`via` names a tool acting with no account (the command line)."""
        if value not in REQUIRED_FOR:
            raise InvalidInput(f"required_for must be one of: {', '.join(REQUIRED_FOR)}")
        with self.db.unit_of_work() as uow:
            policies = PolicyRepository(uow)
            before = effective(policies.get(MFA_REQUIRED_FOR))
            policies.set(MFA_REQUIRED_FOR, value)
            record(
                uow,
                "policy.mfa_changed",
                user=None,
                actor=actor_id,
                ip=printable_ip(ip),
                before=before,
                after=value,
                **({"via": via} if via else {}),
            )
