"""Password rules per NIST SP 800-63B §5.1.1.2: length, not composition; refuse
passwords found in breach corpora (zxcvbn's list of the 30,000 most common)."""

from __future__ import annotations

from functools import cache

from userservice.i18n.languages import N_
from userservice.security.passwords import normalize_password

MIN_LENGTH = 8
MAX_LENGTH = 1024


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why the password is unacceptable, or None when it is fine."""
    normalized = normalize_password(password)
    if len(normalized) < MIN_LENGTH:
        # Literal messages, so that the pages can show them translated (the
        # numbers are MIN_LENGTH and MAX_LENGTH; a test keeps them in step).
        return N_("Password must have at least 8 characters.")
    if len(normalized) > MAX_LENGTH:
        return N_("Password must have at most 1024 characters.")
    folded = normalized.casefold()
    if folded in _common_passwords():
        return N_("This password is too common; choose another.")
    if email and folded in (email.casefold(), email.split("@", 1)[0].casefold()):
        return N_("Password must not be your email address.")
    if len(set(normalized)) == 1:
        return N_("Password must not repeat one character.")
    return None
