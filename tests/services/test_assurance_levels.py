"""M11's level rule, pure: what an authorization request's acr_values asks for
(OIDC Core §3.1.2.1: space-separated, in order of preference, a voluntary claim)
and whether a login's amr (RFC 8176) reaches it."""

from __future__ import annotations

import pytest

from userservice.services.assurance import (
    ACR_MFA,
    ACR_PASSWORD,
    passkey_amr,
    required_level,
    satisfies,
    with_second_factor,
)

PWD_LOGIN = ("pwd",)
APP_LOGIN = with_second_factor("otp")


@pytest.mark.parametrize(
    ("acr_values", "level"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (ACR_MFA, ACR_MFA),
        (ACR_PASSWORD, ACR_PASSWORD),
        # Satisfied by either: the weakest named is what must be reached, in
        # whichever order of preference the client wrote them.
        (f"{ACR_PASSWORD} {ACR_MFA}", ACR_PASSWORD),
        (f"{ACR_MFA} {ACR_PASSWORD}", ACR_PASSWORD),
        # Unknown values are ignored, whatever their position.
        ("urn:other:loa:3", None),
        (f"urn:other:loa:3 {ACR_MFA}", ACR_MFA),
        (f"{ACR_MFA}  urn:other:loa:1", ACR_MFA),
        # Exact names only: no prefix, case or suffix games.
        ("urn:userservice:acr:MFA", None),
        (ACR_MFA + "x", None),
        ("mfa", None),
        (f"{ACR_MFA}\t{ACR_MFA}", ACR_MFA),
    ],
)
def test_m11_required_level(acr_values: str | None, level: str | None) -> None:
    assert required_level(acr_values) == level


@pytest.mark.parametrize(
    ("amr", "level", "met"),
    [
        (PWD_LOGIN, ACR_PASSWORD, True),
        (PWD_LOGIN, ACR_MFA, False),
        (APP_LOGIN, ACR_PASSWORD, True),
        (APP_LOGIN, ACR_MFA, True),
        (with_second_factor("hwk"), ACR_MFA, True),
        # A passwordless passkey with user verification is multi-factor ...
        (passkey_amr(False, user_verified=True), ACR_MFA, True),
        (passkey_amr(True, user_verified=True), ACR_MFA, True),
        # ... without it, one factor: it meets the password level only.
        (passkey_amr(False, user_verified=False), ACR_MFA, False),
        (passkey_amr(True, user_verified=False), ACR_PASSWORD, True),
        # A session row from before amr existed reads as the password alone.
        ((), ACR_MFA, False),
    ],
)
def test_m11_satisfies(amr: tuple[str, ...], level: str, met: bool) -> None:
    assert satisfies(amr, level) is met


def test_m11_every_requested_level_is_met_by_what_a_second_factor_login_gives() -> None:
    # The step-up never loops: the login an account with a factor ends in
    # meets any level a request can ask for.
    for values in (ACR_MFA, ACR_PASSWORD, f"{ACR_MFA} {ACR_PASSWORD}"):
        level = required_level(values)
        assert level is not None and satisfies(APP_LOGIN, level)
