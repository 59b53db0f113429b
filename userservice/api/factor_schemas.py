"""Bodies of the second-factor API (api/factors.py, api/admin_factors.py). Unknown
request fields are refused (G4); no body carries a stored secret or digest, only
what is shown once to the user who just made it (M1, M2)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from userservice.api.schemas import OneTimeCode, Strict
from userservice.services.factors import FactorSummary

RequiredFor = Literal["none", "admins", "all"]


class TotpState(BaseModel):
    enabled: bool = Field(description="An authenticator app is set up and confirmed.")
    confirmed_at: dt.datetime | None = Field(description="When it was confirmed; null if none.")


class FactorsOut(BaseModel):
    """The account's second factors: never a key or a code, only their state."""

    totp: TotpState
    recovery_codes_left: int = Field(
        description="Unused recovery codes (0 without a second factor)."
    )
    passkeys: int = Field(
        default=0,
        description="How many passkeys the account has (their names and dates: "
        "`GET /users/me/factors/passkeys`).",
    )

    @classmethod
    def of(cls, summary: FactorSummary) -> FactorsOut:
        return cls(
            totp=TotpState(enabled=summary.totp, confirmed_at=summary.totp_confirmed_at),
            recovery_codes_left=summary.recovery_codes_left,
            passkeys=summary.passkeys,
        )


class TotpEnrolmentOut(BaseModel):
    """An authenticator app waiting for its first code: shown once (M1)."""

    secret: str = Field(description="The key in base32, for typing into the app.")
    otpauth_uri: str = Field(description="The `otpauth://totp/...` URI the QR code holds.")
    qr_svg: str = Field(
        description="The QR code as an inline `<svg>` element, made by this server (the "
        "key never leaves it for a QR service)."
    )


class TotpConfirmation(Strict):
    code: OneTimeCode = Field(description="The six digits the authenticator app shows now.")


class RecoveryCodesOut(BaseModel):
    """Ten single-use recovery codes (M2): shown this once, stored only as digests."""

    recovery_codes: list[str] = Field(
        description="Each signs in once in place of the app's code; keep them somewhere safe.",
        examples=[["abcd-efgh-ijkl-mnop"]],
    )


class MfaPolicyBody(Strict):
    required_for: RequiredFor = Field(
        description="`none`: each user chooses; `admins`: every administrator must sign in "
        "with a second factor (an authenticator app or a passkey), and one without is asked "
        "to set one up at the next sign-in; `all`: the same for every user. Under `all` the "
        "password grant and HTTP Basic answer `mfa_required` for everyone, so first-party "
        "frontends must sign users in with the authorization code flow and PKCE."
    )
