"""The languages the hosted pages and mails speak, and the marker for extraction."""

from __future__ import annotations

# BCP 47 tags (RFC 5646). Adding a language: add its tag here and a catalog
# directory under locales/ named by `catalog_dir` (tests check both agree).
LOCALES: tuple[str, ...] = ("en", "zh-Hans")
DEFAULT_LOCALE = "en"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def catalog_dir(locale: str) -> str:
    # gettext directory names use underscores: zh-Hans -> zh_Hans.
    return locale.replace("-", "_")
