"""ORM models. The Alembic chain under migrations/ creates exactly this schema."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from userservice.db.base import NAMING as NAMING
from userservice.db.base import Base as Base
from userservice.db.base import utcnow as utcnow


class User(Base):
    __tablename__ = "users"

    # Random UUIDs: ids in URLs must not reveal how many users exist or be guessable.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # Access tokens whose `iat` is earlier are refused (password change, disable).
    tokens_valid_after: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The language the user last chose on the pages (BCP 47); mails follow it.
    locale: Mapped[str | None] = mapped_column(String(35))

    __table_args__ = (Index("ix_users_display_name", "display_name"),)


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(200))
    client_type: Mapped[str] = mapped_column(String(16))  # public | confidential
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    is_first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    # A resource server may introspect any token (RFC 7662 §4); other clients only
    # their own.
    is_resource_server: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    logo_uri: Mapped[str | None] = mapped_column(String(2048))
    client_uri: Mapped[str | None] = mapped_column(String(2048))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Absolute end of the whole family; each rotation carries it forward unchanged.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the user authenticated: access tokens issued on refresh repeat it (RFC 9470 §6).
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    # How (RFC 8176 amr values, space-separated; NULL: the password alone).
    amr: Mapped[str | None] = mapped_column(String(64))


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    # In the database so every replica signs and verifies with the same keys.
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    # Only the SHA-256 of the code is stored: a leaked table cannot be redeemed.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # What the one redemption issued, so that a replay can revoke it (RFC 6749 §4.1.2).
    token_family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    access_jti: Mapped[str | None] = mapped_column(String(64))


class Consent(Base):
    __tablename__ = "consents"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class BrowserSession(Base):
    __tablename__ = "browser_sessions"

    # The cookie holds a random id; we store its SHA-256 (a database leak is no login).
    id_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # What the account page shows and ends a session by: random, so it names the
    # session without being (or deriving from) its secret.
    handle: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    # Personal data (erased with the account): shown so the user can tell sessions apart.
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))


class RevokedAccessToken(Base):
    __tablename__ = "revoked_access_tokens"

    # JWT access tokens are self-contained; revocation (RFC 7009) needs this deny list.
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class GrantRevocation(Base):
    __tablename__ = "grant_revocations"

    # Withdrawing consent must stop that client's access tokens too, which are
    # self-contained JWTs: tokens of (user, client) issued before this mark are refused.
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    not_before: Mapped[int] = mapped_column(BigInteger)


class ServerSecret(Base):
    __tablename__ = "server_secrets"

    # Secrets every replica must share (e.g. the device-cookie signing key); encrypted
    # with the key-encryption secret when one is configured.
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class AccountToken(Base):
    __tablename__ = "account_tokens"

    # Single-use links mailed to a user (verify an address, reset a password). Only
    # the SHA-256 of the token is stored: a leaked table opens no account.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The address the link was sent to: it proves that address and no other.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMail(Base):
    __tablename__ = "mail_outbox"

    # Written in the same transaction as the change that causes the mail, delivered
    # after commit by a sender: a rolled-back change sends nothing, a committed one
    # is never lost.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The Message-ID header: a resend after a crash carries the same one.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))
    # The whole RFC 5322 message, rendered when queued.
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A sender's lease: past it, another sender may take the message over.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the server refused the message for good (a 5xx reply).
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index(
            "ix_mail_outbox_pending",
            "next_attempt_at",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
    )


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # Security events kept in the database as well as the log, so an administrator
    # and the user's own export can see them. No foreign keys: the trail outlives
    # the user (pseudonymised) and the client it names.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    event: Mapped[str] = mapped_column(String(64))
    # The account the event is about; the actor when someone else (an administrator) acted.
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    # Small facts of the event (a reason, a scope) as a JSON object: never a secret, a
    # digest or an address. Text, not JSON: the hot write binds it without the ORM.
    details: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (Index("ix_audit_events_user_id_id", "user_id", "id"),)


# The second factors' tables, defined beside these on the same Base.
from userservice.db.models_factors import HalfLogin as HalfLogin  # noqa: E402
from userservice.db.models_factors import Policy as Policy  # noqa: E402
from userservice.db.models_factors import RecoveryCode as RecoveryCode  # noqa: E402
from userservice.db.models_factors import TotpFactor as TotpFactor  # noqa: E402
from userservice.db.models_passkeys import Passkey as Passkey  # noqa: E402
from userservice.db.models_passkeys import SpentChallenge as SpentChallenge  # noqa: E402
