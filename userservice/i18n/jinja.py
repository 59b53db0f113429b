"""Jinja2 environments with gettext installed, one per locale."""

from __future__ import annotations

from jinja2 import BaseLoader, Environment, StrictUndefined, select_autoescape

from userservice.i18n.catalogs import Catalogs


def jinja_environment(loader: BaseLoader, catalogs: Catalogs, locale: str) -> Environment:
    """Templates write {{ _("Sign in") }} or {% trans %}…{% endtrans %} for their
    own text, and {{ message|translated }} for a message handed in by code (marked
    with N_ there). Build one per locale, once per application. The global `locale`
    is the BCP 47 tag for <html lang>."""
    env = Environment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        # F7: everything is escaped except plain-text mail bodies (*.txt), where
        # HTML escaping would corrupt links.
        autoescape=select_autoescape(
            enabled_extensions=(), disabled_extensions=("txt",), default=True
        ),
        undefined=StrictUndefined,
        auto_reload=False,
    )
    translations = catalogs.translations(locale)
    # Newstyle: placeholders are filled by name and their values escaped (F8).
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations, newstyle=True
    )
    # F8: _() marks its result safe (the catalog is ours), so text from code goes
    # through this filter instead: translated as plain text, escaped like any
    # value, never read as markup or as a %-format.
    env.filters["translated"] = translations.gettext
    env.globals["locale"] = locale
    return env
