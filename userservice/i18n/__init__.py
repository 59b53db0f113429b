"""Languages of the hosted pages and mails: gettext catalogs (Babel), the
request's locale, and Jinja2 environments that translate."""

from userservice.i18n.catalogs import Catalogs
from userservice.i18n.jinja import jinja_environment
from userservice.i18n.languages import DEFAULT_LOCALE, LOCALES, N_, catalog_dir
from userservice.i18n.negotiation import match_locale, negotiate
from userservice.i18n.templates import Templates

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "N_",
    "Catalogs",
    "Templates",
    "catalog_dir",
    "jinja_environment",
    "match_locale",
    "negotiate",
]
