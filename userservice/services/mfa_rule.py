"""The administrators' sign-in rule's values (M8), apart from services/mfa_policy.py:
signing in reads the rule, and changing the rule signs administrators out, so the
values sit in a module that imports neither."""

from __future__ import annotations

REQUIRED_FOR = ("none", "admins")
DEFAULT = "none"


def effective(stored: str | None) -> str:
    """An unknown stored value (a later version's) reads as the stricter rule."""
    if stored is None:
        return DEFAULT
    return stored if stored in REQUIRED_FOR else "admins"
