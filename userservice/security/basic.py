"""Parsing of `Authorization: Basic` (RFC 7617) without ever raising."""

from __future__ import annotations

import base64
import binascii

MAX_HEADER_LENGTH = 4096


def parse_basic(value: str) -> tuple[str, str] | None:
    """Return (user, password), or None when the header is not valid Basic.

    Splits at the first ':' only, so passwords may contain colons (RFC 7617 §2).
    """
    if len(value) > MAX_HEADER_LENGTH:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    if not sep or not user:
        return None
    return user, password
