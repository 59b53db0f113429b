"""Administration of other users' accounts: search and changes by an admin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from userservice.db.factors import MFA_REQUIRED_FOR, PolicyRepository, has_second_factor
from userservice.db.models import User
from userservice.db.ports import Storage, UnitOfWork
from userservice.db.users import UserRepository, user_record
from userservice.errors import InvalidInput, NotFound
from userservice.records import UserRecord
from userservice.services.accounts import UNSET, revoke_everything
from userservice.services.audit import record
from userservice.services.factor_support import end_everything
from userservice.services.mfa_rule import effective


@dataclass(frozen=True)
class AdminChanges:
    is_active: bool | None = None
    is_admin: bool | None = None
    display_name: str | object | None = UNSET


class UserAdministration:
    def __init__(self, db: Storage) -> None:
        self.db = db

    def update(
        self,
        actor_id: uuid.UUID,
        user_id: uuid.UUID,
        changes: AdminChanges,
        *,
        ip: str | None = None,
    ) -> UserRecord:
        with self.db.unit_of_work() as session:
            users = UserRepository(session)
            user = users.get_for_update(user_id)
            if user is None:
                raise NotFound("No such user.")
            if user_id == actor_id and (changes.is_admin is False or changes.is_active is False):
                raise InvalidInput("Admins cannot demote or disable themselves.")
            if changes.display_name is not UNSET:
                user.display_name = changes.display_name  # type: ignore[assignment]
            if changes.is_admin is not None:
                if changes.is_admin and not user.is_admin:
                    _grant_under_policy(session, user, actor_id, ip)
                user.is_admin = changes.is_admin
            if changes.is_active is not None and changes.is_active != user.is_active:
                user.is_active = changes.is_active
                if not changes.is_active:
                    revoke_everything(session, user)
            users.flush_changes()
            # The field names only: a new display name is personal data (L25).
            record(
                session,
                "admin.user_updated",
                user=user_id,
                actor=actor_id,
                ip=ip,
                fields=",".join(_given(changes)),
            )
            return user_record(user)

    async def search(
        self, *, email: str | None, name: str | None, after: str | None, limit: int
    ) -> list[UserRecord]:
        """For the event loop (GET /users): one keyset page, no Session."""
        return await self.db.user_search.page(
            email=email.lower() if email else None,
            name=name,
            after_email=after,
            limit=limit,
        )


def _grant_under_policy(uow: UnitOfWork, user: User, actor_id: uuid.UUID, ip: str | None) -> None:
    """M8: under the `admins` policy a new administrator without an app is signed
    out everywhere in the grant's unit of work, so that no token from before acts
    as an administrator with the password alone; their next sign-in is the forced
    enrolment. The policy's row is held FOR SHARE until this commits: a switch to
    `admins` racing with the grant waits for it, then finds this administrator.
    Under `all` (M13) the rule covered this user before the grant: the switch
    signed them out and every sign-in since asked for a factor, so the grant
    changes nothing of what they must show."""
    if effective(PolicyRepository(uow).get_for_share(MFA_REQUIRED_FOR)) != "admins":
        return
    if has_second_factor(uow, user.id):
        return
    ended = end_everything(uow, user)
    record(uow, "policy.mfa_signed_out", user=user.id, actor=actor_id, ip=ip, sessions=ended)


def _given(changes: AdminChanges) -> list[str]:
    return [
        name
        for name, unset in (
            ("display_name", changes.display_name is UNSET),
            ("is_active", changes.is_active is None),
            ("is_admin", changes.is_admin is None),
        )
        if not unset
    ]
