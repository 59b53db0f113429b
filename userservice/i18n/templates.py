"""A set of templates in every supported language: one Jinja2 environment per
locale, built once per application (pages and mails each have their own set)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, Environment

from userservice.i18n.catalogs import Catalogs
from userservice.i18n.jinja import jinja_environment
from userservice.i18n.languages import DEFAULT_LOCALE, LOCALES
from userservice.i18n.negotiation import match_locale


@dataclass(frozen=True, slots=True)
class Templates:
    catalogs: Catalogs
    environments: Mapping[str, Environment]

    @classmethod
    def build(cls, loader: BaseLoader, catalogs: Catalogs, **shared: Any) -> Templates:
        """`shared`: globals every template of the set sees (e.g. app_name)."""
        environments = {}
        for locale in LOCALES:
            env = jinja_environment(loader, catalogs, locale)
            env.globals.update(shared)
            environments[locale] = env
        return cls(catalogs, environments)

    def environment(self, locale: str | None) -> Environment:
        return self.environments[match_locale(locale) or DEFAULT_LOCALE]

    def render(self, locale: str | None, name: str, context: Mapping[str, Any]) -> str:
        return self.environment(locale).get_template(name).render(context)
