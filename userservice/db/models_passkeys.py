"""Passkeys (WebAuthn Level 2 public-key credentials) and the challenges already
answered, which makes every challenge good for one ceremony only."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from userservice.db.base import Base


class Passkey(Base):
    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The authenticator's credential id (at most 1023 bytes, WebAuthn L2 §5.8.3):
    # unique, so a sign-in without a user name finds its account by it.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    # COSE public key: public by nature, nothing to seal.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The authenticator's signature counter; one that goes backwards betrays a clone.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The BE flag: a synced (multi-device) credential, amr `swk`; otherwise `hwk`.
    backup_eligible: Mapped[bool] = mapped_column(Boolean)
    backed_up: Mapped[bool] = mapped_column(Boolean)
    # Space-separated AuthenticatorTransport values, a hint to the browser.
    transports: Mapped[str | None] = mapped_column(String(128))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SpentChallenge(Base):
    __tablename__ = "spent_challenges"

    # SHA-256 of a WebAuthn challenge that has been answered: inserting it is what
    # spends the challenge, so two answers to one challenge cannot both pass.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The challenge's own expiry: after it, the challenge is refused anyway.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
