"""gettext catalogs, compiled in memory from the .po files when the app starts."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from gettext import NullTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from userservice.i18n.languages import DEFAULT_LOCALE, LOCALES, catalog_dir
from userservice.i18n.negotiation import match_locale

LOCALE_DIR = Path(__file__).parent / "locales"


@dataclass(frozen=True, slots=True)
class Catalogs:
    """One translation table per supported locale, read once per application.
    Several .po files per language (one per owner) merge into one table."""

    by_locale: Mapping[str, NullTranslations]

    @classmethod
    def load(cls, directory: Path = LOCALE_DIR) -> Catalogs:
        tables: dict[str, NullTranslations] = {DEFAULT_LOCALE: NullTranslations()}
        for locale in LOCALES:
            if locale == DEFAULT_LOCALE:
                continue
            tables[locale] = _compile(directory / catalog_dir(locale) / "LC_MESSAGES", locale)
        return cls(tables)

    def translations(self, locale: str | None) -> NullTranslations:
        """The table for `locale`; any other value (an old or odd users.locale)
        gets its closest supported language, else the default."""
        return self.by_locale[match_locale(locale) or DEFAULT_LOCALE]

    def gettext(self, locale: str | None, message: str) -> str:
        return self.translations(locale).gettext(message)

    def ngettext(self, locale: str | None, singular: str, plural: str, n: int) -> str:
        return self.translations(locale).ngettext(singular, plural, n)


def _compile(folder: Path, locale: str) -> NullTranslations:
    merged: Translations | None = None
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=catalog_dir(locale), domain=po_path.stem)
        buffer = io.BytesIO()
        # Fuzzy entries are guesses awaiting review: never shown (tests fail on them).
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        table = Translations(buffer, domain=po_path.stem)
        if merged is None:
            merged = table
        else:
            merged.merge(table)
    return merged if merged is not None else NullTranslations()
