"""Second factors: authenticator-app secrets, recovery codes, the half-login between
the password and the second factor, and the administrators' sign-in policy."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from userservice.db.base import Base, utcnow


class TotpFactor(Base):
    __tablename__ = "totp_factors"

    # One authenticator app per user: the row exists from enrolment on and counts
    # as a factor only once confirmed with a valid code (M1).
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The base32 secret, sealed with the key-encryption secret when one is set (S11).
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The last time step whose code was accepted: a code is good once (RFC 6238 §5.2),
    # enforced by one conditional UPDATE.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of an 80-bit random code: a leaked table gives no usable code (M2).
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class HalfLogin(Base):
    __tablename__ = "half_logins"

    # The password passed, the second factor not yet: the cookie holds a random id,
    # the table its SHA-256. Nothing but the second step reads this table (M6).
    id_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # `verify`: a factor is due; `enrol`: the policy requires one the user lacks.
    step: Mapped[str] = mapped_column(String(16))
    # When the password was checked: the auth_time of the session it becomes.
    auth_time: Mapped[int] = mapped_column(BigInteger)
    next_path: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Policy(Base):
    __tablename__ = "policies"

    # Server-wide rules an administrator sets at run time (every replica reads them).
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
