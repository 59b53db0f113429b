"""Security audit events (OWASP ASVS V7): who did what, from where, in UTC.

One line per event as `event key=value …`. Values are escaped so that user
input (emails, names) cannot forge extra lines (CR/LF injection into logs);
no secret (password, token, digest) is ever passed here.
"""

from __future__ import annotations

import logging

log = logging.getLogger("userservice.audit")


def _clean(value: object) -> str:
    text = str(value)
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return f'"{text}"' if (" " in text or not text) else text


def audit(event: str, **fields: object) -> None:
    if log.isEnabledFor(logging.INFO):
        parts = " ".join(f"{k}={_clean(v)}" for k, v in fields.items() if v is not None)
        log.info("%s %s", event, parts)
