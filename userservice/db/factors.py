"""Second factors' storage: authenticator apps, recovery codes and the sign-in
policy (M1, M2, M8). The only SQL of services/factors.py and services/mfa_policy.py.

Every use of a code is ONE conditional UPDATE whose row count decides: of any
number of concurrent uses exactly one matches (PostgreSQL's UPDATE takes the
row's lock, then re-checks its WHERE against the committed row; SQLite runs one
writer at a time), so no code is good twice, however the requests race."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from userservice.db.codec import utc as as_utc
from userservice.db.models import Passkey, Policy, RecoveryCode, TotpFactor
from userservice.db.statement import Statement

# The policies table's row of the administrators' sign-in rule (M8).
MFA_REQUIRED_FOR = "mfa_required_for"


@dataclass(frozen=True, slots=True)
class StoredTotp:
    secret: str  # as stored: sealed when a key-encryption secret is set
    created_at: dt.datetime
    confirmed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CodeCounts:
    left: int
    used: int


class FactorRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- authenticator app ---------------------------------------------------------

    def totp(self, user_id: uuid.UUID) -> StoredTotp | None:
        row = self.session.execute(
            select(TotpFactor.secret, TotpFactor.created_at, TotpFactor.confirmed_at).where(
                TotpFactor.user_id == user_id
            )
        ).first()
        if row is None:
            return None
        confirmed = as_utc(row[2]) if row[2] is not None else None
        return StoredTotp(row[0], as_utc(row[1]), confirmed)

    def start_totp(self, user_id: uuid.UUID, sealed_secret: str, now: dt.datetime) -> bool:
        """A new unconfirmed app in place of any unconfirmed one; False (nothing
        changed) when a confirmed app is there."""
        self.session.execute(
            delete(TotpFactor).where(
                TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None)
            )
        )
        if self.totp(user_id) is not None:
            return False
        self.session.add(TotpFactor(user_id=user_id, secret=sealed_secret, created_at=now))
        self.session.flush()
        return True

    def confirm_totp(
        self, user_id: uuid.UUID, step: int, now: dt.datetime, started_after: dt.datetime
    ) -> bool:
        """Activate the pending app with the step its first code matched (M1: the
        app counts only once it has produced a valid code). False when there is no
        pending app started after `started_after`, or a concurrent confirmation won."""
        result = self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                TotpFactor.confirmed_at.is_(None),
                TotpFactor.created_at > started_after,
            )
            .values(confirmed_at=now, last_used_step=step)
        )
        return getattr(result, "rowcount", 0) == 1

    def use_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record that the confirmed app's code of `step` was used; False when that
        step or a later one was used already (a replayed or older code, RFC 6238
        §5.2) or the app is not confirmed."""
        result = self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                TotpFactor.confirmed_at.is_not(None),
                or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step),
            )
            .values(last_used_step=step)
        )
        return getattr(result, "rowcount", 0) == 1

    def delete_totp(self, user_id: uuid.UUID, *, confirmed_only: bool = False) -> bool:
        condition = [TotpFactor.user_id == user_id]
        if confirmed_only:
            condition.append(TotpFactor.confirmed_at.is_not(None))
        result = self.session.execute(delete(TotpFactor).where(*condition))
        return bool(getattr(result, "rowcount", 0))

    # -- recovery codes ----------------------------------------------------------------

    def replace_codes(self, user_id: uuid.UUID, digests: list[str], now: dt.datetime) -> None:
        """The user's set of codes is `digests`: every earlier code is void (M2)."""
        self.delete_codes(user_id)
        self.session.add_all(
            RecoveryCode(user_id=user_id, digest=value, created_at=now) for value in digests
        )
        self.session.flush()

    def use_code(self, user_id: uuid.UUID, code_digest: str, now: dt.datetime) -> bool:
        """Spend one unused code of this user; False when it is unknown, another
        user's, or spent already (including by a concurrent use)."""
        result = self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.digest == code_digest,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
        )
        return getattr(result, "rowcount", 0) == 1

    def code_counts(self, user_id: uuid.UUID) -> CodeCounts:
        row = self.session.execute(
            select(
                func.count().filter(RecoveryCode.used_at.is_(None)),
                func.count().filter(RecoveryCode.used_at.is_not(None)),
            ).where(RecoveryCode.user_id == user_id)
        ).one()
        return CodeCounts(int(row[0] or 0), int(row[1] or 0))

    def delete_codes(self, user_id: uuid.UUID) -> int:
        result = self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    # -- passkeys (counted only: services/passkeys.py owns them) -----------------------

    def passkey_count(self, user_id: uuid.UUID) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(count or 0)

    def delete_passkeys(self, user_id: uuid.UUID) -> int:
        """An administrator's reset (M8): every passkey of the user goes."""
        result = self.session.execute(delete(Passkey).where(Passkey.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)


class PolicyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, name: str) -> str | None:
        value = self.session.scalar(select(Policy.value).where(Policy.name == name))
        return None if value is None else str(value)

    def get_for_share(self, name: str) -> str | None:
        """The value, its row held against a concurrent `set` until this unit of
        work ends (FOR SHARE on PostgreSQL; SQLite has one writer at a time)."""
        value = self.session.scalar(
            select(Policy.value).where(Policy.name == name).with_for_update(read=True)
        )
        return None if value is None else str(value)

    def set(self, name: str, value: str) -> None:
        row = self.session.get(Policy, name, with_for_update=True)
        if row is None:
            self.session.add(Policy(name=name, value=value))
        else:
            row.value = value
        self.session.flush()


def has_factor(user_id: ColumnElement[uuid.UUID] | uuid.UUID) -> ColumnElement[bool]:
    """The one definition of "has a second factor": a confirmed authenticator app or
    at least one passkey (recovery codes alone are a way back in, not a factor)."""
    return or_(
        exists().where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)),
        exists().where(Passkey.user_id == user_id),
    )


# After a correct password: whether the user has a second factor, and the sign-in
# policy, in one round trip. A hot statement (UserReads runs it on the event loop,
# as the credentials read): the password grant never hops to a worker thread for it.
SIGN_IN_STATE = Statement(
    select(
        has_factor(bindparam("user_id", type_=Uuid)),
        select(Policy.value).where(Policy.name == bindparam("policy")).scalar_subquery(),
    )
)


def sign_in_state(row: tuple[object, ...] | None) -> tuple[bool, str | None]:
    """SIGN_IN_STATE's row as (has a second factor, the policy's stored value)."""
    if row is None:
        return False, None
    return bool(row[0]), None if row[1] is None else str(row[1])


def has_second_factor(session: Session, user_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(has_factor(user_id))))
