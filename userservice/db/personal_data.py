"""Everything stored about one account, read for its export (GDPR art. 15, 20) and
erased with it (art. 17): the only SQL of both.

What the export holds is chosen here, column by column: a column not named below
is not exported. No digest (session ids, refresh tokens, codes, mailed links), no
password hash, no refresh-token family id (it names a grant to the bearer check)
and no mail content (a pending mail holds a live link) is ever selected (L26).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from userservice.db.audit import events_about, pseudonymise
from userservice.db.models import (
    AccountToken,
    AuthorizationCode,
    BrowserSession,
    Consent,
    GrantRevocation,
    OAuthClient,
    OutboxMail,
    Passkey,
    RecoveryCode,
    RefreshToken,
    TotpFactor,
    User,
)
from userservice.records import StoredAuditEvent

Rows = list[dict[str, Any]]
# An export is read in one go; a trail this long is far past any real account's.
MAX_EXPORTED_EVENTS = 100_000


@dataclass(frozen=True, slots=True)
class PersonalData:
    """One account's rows, by category, as column label -> stored value."""

    profile: dict[str, Any]
    apps: Rows
    withdrawn_apps: Rows
    sessions: Rows
    refresh_tokens: Rows
    authorization_codes: Rows
    links: Rows
    mail: Rows
    events: list[StoredAuditEvent]
    # Second factors: what kind, since when, how many recovery codes are left or
    # spent, each passkey's name; never a secret, key or code's digest (M1, M2, M9).
    factors: Rows = field(default_factory=list)


def _factors(session: Session, user_id: uuid.UUID) -> Rows:
    app = session.execute(
        select(TotpFactor.created_at, TotpFactor.confirmed_at).where(TotpFactor.user_id == user_id)
    ).first()
    # M9: a passkey's name, dates and kind; never its public key or credential id
    # (no information about the person, and an aid to whoever holds the file).
    passkeys: Rows = [
        {
            "kind": "passkey",
            "name": row.name,
            "created_at": row.created_at,
            "last_used_at": row.last_used_at,
            "synced": row.backup_eligible,
        }
        for row in session.execute(
            select(Passkey.name, Passkey.created_at, Passkey.last_used_at, Passkey.backup_eligible)
            .where(Passkey.user_id == user_id)
            .order_by(Passkey.created_at, Passkey.id)
        )
    ]
    if app is None and not passkeys:
        return []
    left, used = session.execute(
        select(
            func.count().filter(RecoveryCode.used_at.is_(None)),
            func.count().filter(RecoveryCode.used_at.is_not(None)),
        ).where(RecoveryCode.user_id == user_id)
    ).one()
    codes = {"recovery_codes_left": int(left or 0), "recovery_codes_used": int(used or 0)}
    if app is None:
        # A passkey-only account: its recovery codes in a row of their own.
        return [*passkeys, {"kind": "recovery_codes", **codes}]
    totp = {"kind": "totp", "created_at": app.created_at, "confirmed_at": app.confirmed_at}
    return [{**totp, **codes}, *passkeys]


def _rows(session: Session, query: Select[*tuple[Any, ...]]) -> Rows:
    return [dict(row._mapping) for row in session.execute(query)]


def personal_data(session: Session, user_id: uuid.UUID) -> PersonalData | None:
    """Every category of the account's data, or None when there is no such account."""
    profile = session.execute(
        select(
            User.id,
            User.email,
            User.display_name,
            User.email_verified,
            User.is_active,
            User.is_admin,
            User.locale,
            User.created_at,
            User.updated_at,
        ).where(User.id == user_id)
    ).first()
    if profile is None:
        return None
    apps = _rows(
        session,
        select(
            Consent.client_id,
            OAuthClient.client_name,
            Consent.scope,
            Consent.created_at.label("granted_at"),
            Consent.updated_at,
        )
        .join(OAuthClient, OAuthClient.client_id == Consent.client_id)
        .where(Consent.user_id == user_id)
        .order_by(Consent.created_at),
    )
    withdrawn = _rows(
        session,
        select(GrantRevocation.client_id, GrantRevocation.not_before.label("withdrawn_at"))
        .where(GrantRevocation.user_id == user_id)
        .order_by(GrantRevocation.client_id),
    )
    sessions = _rows(
        session,
        select(
            BrowserSession.handle,
            BrowserSession.user_agent,
            BrowserSession.ip,
            BrowserSession.created_at,
            BrowserSession.last_seen_at,
            BrowserSession.expires_at,
        )
        .where(BrowserSession.user_id == user_id)
        .order_by(BrowserSession.created_at),
    )
    tokens = _rows(
        session,
        select(
            RefreshToken.client_id,
            RefreshToken.scope,
            RefreshToken.issued_at,
            RefreshToken.last_used_at,
            RefreshToken.expires_at,
            RefreshToken.revoked_at,
        )
        .where(RefreshToken.user_id == user_id)
        .order_by(RefreshToken.id),
    )
    codes = _rows(
        session,
        select(
            AuthorizationCode.client_id,
            AuthorizationCode.scope,
            AuthorizationCode.redirect_uri,
            AuthorizationCode.created_at,
            AuthorizationCode.expires_at,
            AuthorizationCode.used_at,
        )
        .where(AuthorizationCode.user_id == user_id)
        .order_by(AuthorizationCode.created_at),
    )
    links = _rows(
        session,
        select(
            AccountToken.purpose,
            AccountToken.email.label("address"),
            AccountToken.created_at,
            AccountToken.expires_at,
            AccountToken.used_at,
        )
        .where(AccountToken.user_id == user_id)
        .order_by(AccountToken.created_at),
    )
    mail = _rows(
        session,
        select(
            OutboxMail.kind,
            OutboxMail.recipient,
            OutboxMail.created_at,
            OutboxMail.sent_at,
            OutboxMail.failed_at,
        )
        .where(OutboxMail.user_id == user_id)
        .order_by(OutboxMail.id),
    )
    events = events_about(session, user_id, after=None, limit=MAX_EXPORTED_EVENTS)
    return PersonalData(
        dict(profile._mapping),
        apps,
        withdrawn,
        sessions,
        tokens,
        codes,
        links,
        mail,
        events,
        _factors(session, user_id),
    )


def erase(session: Session, user_id: uuid.UUID, pseudonym: uuid.UUID) -> bool:
    """The account and everything that names it, in the caller's unit of work;
    False when there is no such account. The audit trail stays, under `pseudonym`
    (L27)."""
    email = session.scalar(select(User.email).where(User.id == user_id).with_for_update())
    if email is None:
        return False
    addresses = {email.lower()} | {
        address.lower()
        for address in session.scalars(
            select(AccountToken.email).where(AccountToken.user_id == user_id)
        )
    }
    pseudonymise(session, user_id, pseudonym)
    # Mail to the account's addresses filed under no account (the cascade takes the
    # account's own): its recipient is this person's address all the same. Mail
    # filed under another account is that account's, whatever its recipient.
    session.execute(
        delete(OutboxMail)
        .where(
            OutboxMail.user_id.is_(None),
            func.lower(OutboxMail.recipient).in_(sorted(addresses)),
        )
        .execution_options(synchronize_session=False)
    )
    # Sessions, refresh tokens, codes, consents, withdrawals, mailed links and the
    # account's own mail go with the row (ON DELETE CASCADE, on both databases).
    session.execute(
        delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
    )
    return True
