"""Signing out, at once, every account a stricter sign-in rule covers that has no
second factor (M8, M13): a constant number of statements however many accounts,
in the caller's unit of work (the one that changes the rule), so the rule and its
effect commit together or not at all.

The same effects as ending one account's sessions and tokens (M3, L3, L23): its
browser sessions deleted, its unredeemed authorization codes discarded, its
refresh families revoked, and its revocation mark raised strictly above the
previous one, so that every access token, half-login and session stamped before
is refused. Each statement names the accounts by the same predicate (a subquery),
never by a list of ids: a list would cost one bind parameter per account (and
meet the drivers' limits); the SQL is the same for five accounts or a million.

The rows are first locked in id order (FOR UPDATE on PostgreSQL; SQLite has one
writer at a time), as a per-account lock would take them, so that a concurrent
factor enrolment, token grant or second switch is ordered before or after this
one, never in between. An enrolment that held a row when the switch came is
seen by the statements after the lock: that account keeps its sessions and gets
no event. Once the rows are held, none of them can leave the set; the rule's own
row is locked by the caller first, so a factor removal, which reads the rule for
share, waits too."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    case,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from userservice.db.factors import has_factor
from userservice.db.models import AuthorizationCode, BrowserSession, RefreshToken, User

# Bulk statements on the ORM entities skip the Session's identity-map scan
# ("synchronize_session"): its cost grows with every object the Session holds,
# and this unit of work loads no User to keep in step.
_BULK = {"synchronize_session": False}
_USERS = cast(Table, User.__table__)


@dataclass(frozen=True, slots=True)
class SignedOut:
    """One account the switch signed out, and how many browser sessions it had."""

    user_id: uuid.UUID
    sessions: int


def raised_mark(current: ColumnElement[int], mark: int) -> ColumnElement[int]:
    """The new revocation mark: `mark`, or one above the current one when that is
    not lower. Strictly increasing: a session or token started right after an
    earlier revocation in the same second carries that mark and must die with
    this one too (L3, L23). CASE, not GREATEST: SQLite has no GREATEST."""
    following = func.coalesce(current, 0) + 1
    return case((following > mark, following), else_=literal(mark, BigInteger))


def unenrolled(*, admins_only: bool) -> ColumnElement[bool]:
    """The users rows the switch covers: active, without a second factor (the one
    definition, db/factors.has_factor), and administrators only under `admins`."""
    condition = User.is_active.is_(True) & ~has_factor(_USERS.c.id)
    if admins_only:
        condition = condition & User.is_admin.is_(True)
    return condition


def sign_out_unenrolled(
    session: Session, *, admins_only: bool, mark: int, now: dt.datetime
) -> list[SignedOut]:
    """Sign out every active account (administrator under `admins_only`) without a
    second factor: five statements whatever their number. Returns them in id
    order with the number of browser sessions each lost."""
    return sign_out(session, unenrolled(admins_only=admins_only), mark=mark, now=now)


def sign_out(
    session: Session, which: ColumnElement[bool], *, mark: int, now: dt.datetime
) -> list[SignedOut]:
    """End every browser session, unredeemed code and refresh family of the users
    rows matching `which` (a condition on User), and raise their revocation mark."""
    # 1. Lock in id order: the order two concurrent switches (or a switch and a
    # per-account change) take the same rows in, so neither deadlocks the other.
    ids = list(
        session.scalars(select(User.id).where(which).order_by(User.id).with_for_update(of=User))
    )
    if not ids:
        return []
    # 2. The sessions, counted as they go: DELETE … RETURNING counts exactly the
    # rows it removed, as a row count would.
    ended = Counter(
        session.scalars(
            delete(BrowserSession)
            .where(BrowserSession.user_id.in_(_chosen(which)))
            .returning(BrowserSession.user_id)
            .execution_options(**_BULK)
        )
    )
    # The accounts whose mark rose are the ones signed out. On PostgreSQL a row
    # the lock above waited for was matched against the rows as they were when
    # it started (a factor enrolled meanwhile unseen); every later statement
    # reads them anew, so their results name whom the switch really ended.
    revoked = revoke(session, which, mark=mark, now=now)
    return [SignedOut(user_id, ended[user_id]) for user_id in sorted(revoked)]


def revoke(
    session: Session, which: ColumnElement[bool], *, mark: int, now: dt.datetime
) -> list[uuid.UUID]:
    """Raise the revocation mark of the users rows matching `which`, discard their
    unredeemed codes and revoke their refresh families: every access token,
    half-login and browser session from before is refused by the mark (L3, L23),
    their rows left to expire. Three statements however many rows; the caller
    holds the rows' locks, or the first statement takes them. Their ids."""
    revoked = list(
        session.scalars(
            update(User)
            .where(which)
            .values(tokens_valid_after=raised_mark(_USERS.c.tokens_valid_after, mark))
            .returning(User.id)
            .execution_options(**_BULK)
        )
    )
    # The codes before the refresh families: on PostgreSQL the delete waits for a
    # redemption holding a code to commit, so the refresh tokens that redemption
    # bought are there to be revoked next (L23).
    session.execute(
        delete(AuthorizationCode)
        .where(AuthorizationCode.user_id.in_(_chosen(which)), AuthorizationCode.used_at.is_(None))
        .execution_options(**_BULK)
    )
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id.in_(_chosen(which)), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(**_BULK)
    )
    return revoked


def _chosen(which: ColumnElement[bool]) -> Select[tuple[uuid.UUID]]:
    # The users' ids as a subquery, never as a list (see the module's text).
    return select(_USERS.c.id).where(which).correlate(None)
