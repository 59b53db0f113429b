"""The settings of second factors and the two-step sign-in. Part of Settings
(settings.py), kept apart so that each file stays readable."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings


class FactorSettings(BaseSettings):
    half_login_ttl_seconds: int = Field(
        default=300,
        ge=60,
        le=1800,
        description="how long the sign-in page waits for the second factor after a "
        "correct password before the password must be entered again",
    )
    second_factor_limit: str = Field(
        default="5/5minutes;20/day",
        description="wrong second-factor codes per account before 429, in every "
        "window given (`;` between them; counted apart from wrong passwords)",
    )
    totp_issuer: str | None = Field(
        default=None,
        max_length=64,
        description="the name authenticator apps show beside the account; unset: `app_name`",
    )

    passkey_rp_name: str | None = Field(
        default=None,
        max_length=64,
        description="the name a passkey prompt shows for this service; unset: `app_name`. "
        "The relying party id is the issuer's host name, which must be a domain name "
        "(`localhost` included), not an IP address, for passkeys to be offered",
    )
    passkey_challenge_ttl_seconds: int = Field(
        default=300,
        ge=30,
        le=900,
        description="how long a passkey prompt (its WebAuthn challenge) stays answerable",
    )

    @field_validator("second_factor_limit")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            windows = parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a list of rate limits such as 5/5minutes;20/day"
            ) from None
        # The same window twice would count each failure twice in one counter.
        if len({item.key_for() for item in windows}) != len(windows):
            raise ValueError(f"{value!r} gives the same window twice")
        return value

    @field_validator("totp_issuer", "passkey_rp_name")
    @classmethod
    def _issuer_label(cls, value: str | None) -> str | None:
        # The otpauth URI's label is `issuer:account`: a colon would move the
        # boundary, and a control character would show in the user's app (or in
        # the browser's passkey prompt).
        if value is not None and (not value.strip() or ":" in value or not value.isprintable()):
            raise ValueError("must be printable text without a colon")
        return value
