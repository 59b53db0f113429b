"""The sign-in rule's values (M8): nobody by rule (`none`, each user chooses),
every administrator (`admins`), or every user (`all`). Apart from
services/mfa_policy.py: signing in reads the rule, and changing the rule signs
people out, so the values sit in a module that imports neither."""

from __future__ import annotations

REQUIRED_FOR = ("none", "admins", "all")
DEFAULT = "none"


def effective(stored: str | None) -> str:
    """An unknown stored value (a later version's) reads as the strictest rule."""
    if stored is None:
        return DEFAULT
    return stored if stored in REQUIRED_FOR else "all"


def applies(rule: str, *, is_admin: bool) -> bool:
    """Whether the effective `rule` requires this user to have a second factor."""
    return rule == "all" or (rule == "admins" and is_admin)
