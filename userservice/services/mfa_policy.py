"""Who must sign in with a second factor (M8, M13): nobody by rule (`none`, each
user chooses), every administrator (`admins`), or every user (`all`). Set at run
time by an administrator and kept in the database, so that every replica applies
the same rule. Under `all` the password grant and HTTP Basic answer `mfa_required`
for every user (they carry no second factor, M4): first-party frontends sign in
through the authorization code flow with PKCE."""

from __future__ import annotations

import datetime as dt
import uuid

from userservice.db.factors import MFA_REQUIRED_FOR, PolicyRepository
from userservice.db.policy_switch import sign_out_unenrolled
from userservice.db.ports import Storage
from userservice.errors import InvalidInput
from userservice.records import AuditEntry
from userservice.services.accounts import revocation_mark
from userservice.services.audit import record, record_all
from userservice.services.client_address import printable_ip
from userservice.services.mfa_rule import REQUIRED_FOR, effective

# REQUIRED_FOR is part of this module's interface (the API and the command line).
__all__ = ["REQUIRED_FOR", "MfaPolicy"]


class MfaPolicy:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def required_for(self) -> str:
        with self.db.unit_of_work(read_only=True) as uow:
            return effective(PolicyRepository(uow).get(MFA_REQUIRED_FOR))

    def set_required_for(
        self, value: str, *, actor_id: uuid.UUID | None, ip: str | None, via: str | None = None
    ) -> None:
        """`via` names a tool acting with no account (the command line).

        M8, M13: the rule bites at once. Every active user it covers (every
        administrator under `admins`, everyone under `all`) who has no second
        factor (neither an app nor a passkey) loses every session, refresh and
        access token in this same unit of work, or a token from before (a refresh
        keeps its amr `pwd`, RFC 8176) would go on acting without one, an
        administrator's even to switch the rule off again. Their next sign-in is
        the forced enrolment. One `policy.mfa_signed_out` event per such user, in
        their own trail, names the actor and the rule. Under `all` this is one
        transaction however many users it signs out, of a constant number of
        statements: it holds their rows' locks until it commits."""
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
            if value != "none":
                # A constant number of statements however many accounts (see
                # db/policy_switch.py): the rule's row and every covered account's
                # row are held for as short a time as the switch allows.
                signed_out = sign_out_unenrolled(
                    uow,
                    admins_only=value == "admins",
                    mark=revocation_mark(),
                    now=dt.datetime.now(dt.UTC),
                )
                extra = {"via": via} if via else {}
                record_all(
                    uow,
                    [
                        AuditEntry(
                            "policy.mfa_signed_out",
                            user.user_id,
                            actor_id,
                            None,
                            printable_ip(ip),
                            {"sessions": user.sessions, "rule": value, **extra},
                        )
                        for user in signed_out
                    ],
                )
