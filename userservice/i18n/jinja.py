"""Jinja2 environments with gettext installed, one per locale."""

from __future__ import annotations

from jinja2 import BaseLoader, Environment, StrictUndefined, select_autoescape

from userservice.i18n.catalogs import Catalogs


def jinja_environment(loader: BaseLoader, catalogs: Catalogs, locale: str) -> Environment:
    """Templates write {{ _("Sign in") }} or {% trans %}…{% endtrans %}. Build one
    per locale, once per application. The global `locale` is the BCP 47 tag for
    <html lang>."""
    env = Environment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        # F7: everything is escaped except plain-text mail bodies (*.txt), where
        # HTML escaping would corrupt links; translated strings are escaped too
        # (newstyle gettext), so a catalog cannot inject markup either.
        autoescape=select_autoescape(
            enabled_extensions=(), disabled_extensions=("txt",), default=True
        ),
        undefined=StrictUndefined,
        auto_reload=False,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        catalogs.translations(locale), newstyle=True
    )
    env.globals["locale"] = locale
    return env
