"""How a login was made, as relying parties are told: `amr` (RFC 8176 method
references) and `acr` (OIDC Core §2, our two levels), from one rule (M5).

Stored once per login (session, authorization code, refresh family) as the
space-separated amr; the acr is derived from it, so the two can never disagree."""

from __future__ import annotations

from collections.abc import Iterable

ACR_PASSWORD = "urn:userservice:acr:pwd"  # noqa: S105 (a level's name)
ACR_MFA = "urn:userservice:acr:mfa"
# Weakest first: what discovery publishes as acr_values_supported.
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)
PASSWORD = "pwd"  # noqa: S105 (RFC 8176's name of the method)
# RFC 8176 §2: a one-time password, whether from an authenticator app or a
# single-use recovery code.
ONE_TIME_CODE = "otp"
MULTI_FACTOR = "mfa"
# RFC 8176 §2: proof of possession of a hardware-secured key (a device-bound
# passkey) or of a software-secured one (a synced passkey, whose authenticator
# reports backup eligibility: the key leaves the device).
HARDWARE_KEY = "hwk"
SOFTWARE_KEY = "swk"
PASSWORD_ONLY: tuple[str, ...] = (PASSWORD,)


def with_second_factor(method: str) -> tuple[str, ...]:
    """The amr of a password login completed with a second factor of `method`."""
    return (PASSWORD, method, MULTI_FACTOR)


def passkey_method(backup_eligible: bool) -> str:
    return SOFTWARE_KEY if backup_eligible else HARDWARE_KEY


def passkey_amr(backup_eligible: bool, *, user_verified: bool) -> tuple[str, ...]:
    """The amr of a sign-in with a passkey alone: the key, plus `mfa` when the
    authenticator verified the user (PIN or biometric: a second factor inside it)."""
    method = passkey_method(backup_eligible)
    return (method, MULTI_FACTOR) if user_verified else (method,)


def acr_of(amr: Iterable[str]) -> str:
    return ACR_MFA if MULTI_FACTOR in amr else ACR_PASSWORD


def stored_amr(amr: Iterable[str]) -> str:
    return " ".join(amr)


def loaded_amr(stored: str | None) -> tuple[str, ...]:
    """NULL (rows written before second factors existed) is the password alone."""
    return tuple(stored.split()) if stored else PASSWORD_ONLY


def required_level(acr_values: str | None) -> str | None:
    """M11: the level an authorization request's `acr_values` asks for, or None.

    OIDC Core §3.1.2.1: space-separated, in order of preference, and a voluntary
    claim, so values we do not know are ignored. Our levels are ordered (pwd <
    mfa) and the request is satisfied by any level it names, so what must be
    reached is the weakest known one (`pwd mfa` is met by either)."""
    known = [ACR_VALUES.index(v) for v in (acr_values or "").split() if v in ACR_VALUES]
    return ACR_VALUES[min(known)] if known else None


def satisfies(amr: Iterable[str], level: str) -> bool:
    """M11: a login of `amr` reached `level` (or a stronger one)."""
    return ACR_VALUES.index(acr_of(amr)) >= ACR_VALUES.index(level)
