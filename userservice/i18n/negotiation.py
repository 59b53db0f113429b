"""Which supported language a request gets: OIDC ui_locales, then the language
cookie, then Accept-Language (RFC 9110 §12.5.4), then the default."""

from __future__ import annotations

import re

from babel import Locale
from babel.core import UnknownLocaleError, get_global

from userservice.i18n.languages import DEFAULT_LOCALE, LOCALES

MAX_TAG_LENGTH = 35  # RFC 5646 §4.4.1: 35 characters hold every useful tag
MAX_TAGS = 8  # of a header or ui_locales: a long list costs parsing, adds nothing
_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


def negotiate(ui_locales: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The locale to use. Every input is untrusted text; the answer is always a
    member of LOCALES (F9)."""
    for tag in (ui_locales or "").split()[:MAX_TAGS]:
        found = match_locale(tag)
        if found:
            return found
    found = match_locale(cookie)
    if found:
        return found
    for tag in _by_preference(accept_language or ""):
        found = match_locale(tag)
        if found:
            return found
    return DEFAULT_LOCALE


def match_locale(tag: str | None) -> str | None:
    """The supported locale serving BCP 47 `tag`, or None: same language, and the
    same script when the locale names one (zh-CN and zh are zh-Hans; zh-TW is not)."""
    if not tag or len(tag) > MAX_TAG_LENGTH or _TAG.fullmatch(tag) is None:
        return None
    wanted = _language_script(tag)
    if wanted is None:
        return None
    for locale in LOCALES:
        supported = _language_script(locale)
        if supported is None or supported[0] != wanted[0]:
            continue
        if supported[1] is None or supported[1] == wanted[1]:
            return locale
    return None


def _language_script(tag: str) -> tuple[str, str | None] | None:
    try:
        parsed = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    script = parsed.script
    if script is None:
        # CLDR likely subtags: a bare "zh" is written in Hans, "zh-TW" in Hant.
        likely = get_global("likely_subtags")
        key = f"{parsed.language}_{parsed.territory}" if parsed.territory else parsed.language
        expanded = likely.get(key) or likely.get(parsed.language) or ""
        parts = expanded.split("_")
        script = parts[1] if len(parts) > 2 else None
    return parsed.language, script


def _by_preference(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[: MAX_TAGS * 2]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and tag != "*" and 0.0 < weight <= 1.0:
            ranked.append((-weight, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)[:MAX_TAGS]]
