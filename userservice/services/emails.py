"""Email address normalization, so one mailbox maps to exactly one account."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from userservice.errors import InvalidInput

MAX_EMAIL_LENGTH = 320


def normalize_email(raw: str) -> str:
    """NFKC + case folding before the uniqueness check (OWASP ASVS V2; prevents
    'Alice@x' and its full-width twin becoming two accounts for one mailbox)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text or len(text) > MAX_EMAIL_LENGTH or "\x00" in text:
        raise InvalidInput("Enter a valid email address.")
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidInput(f"Enter a valid email address: {exc}") from None
    return unicodedata.normalize("NFKC", checked.normalized).lower()
