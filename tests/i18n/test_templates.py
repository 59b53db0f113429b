"""Templates in every language: one Jinja2 environment per locale with gettext
installed; what code hands in is escaped, translated or not (F7, F8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import DictLoader, UndefinedError

from userservice.i18n import LOCALES, Catalogs, Templates, catalog_dir, jinja_environment

PO = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"

msgid "Sign in"
msgstr "登录"

msgid "Hello %(name)s"
msgstr "你好 %(name)s"

msgid "<b>bold</b>"
msgstr "<b>粗体</b>"
"""
LOADER = DictLoader(
    {
        "page.html": (
            '<html lang="{{ locale }}">{{ _("Sign in") }}|{{ _("Hello %(name)s", name=who) }}'
        ),
        "code.html": "{{ message|translated }}",
        "mail.txt": "{{ link }} {{ _('Sign in') }}",
        "strict.html": "{{ missing }}",
    }
)


@pytest.fixture
def catalogs(tmp_path: Path) -> Catalogs:
    folder = tmp_path / catalog_dir("zh-Hans") / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "test.po").write_text(PO, encoding="utf-8")
    return Catalogs.load(tmp_path)


def test_a_page_in_each_language(catalogs: Catalogs) -> None:
    templates = Templates.build(LOADER, catalogs)
    assert set(templates.environments) == set(LOCALES)
    page = templates.render("zh-Hans", "page.html", {"who": "Ada"})
    assert page == '<html lang="zh-Hans">登录|你好 Ada'
    assert templates.render("en", "page.html", {"who": "Ada"}).startswith('<html lang="en">Sign')
    # Any other tag gets the closest offered language, else the default.
    assert templates.render("zh-CN", "page.html", {"who": "A"}).startswith('<html lang="zh-Hans"')
    assert templates.render("fr", "page.html", {"who": "A"}).startswith('<html lang="en"')


def test_placeholders_are_escaped(catalogs: Catalogs) -> None:
    env = jinja_environment(LOADER, catalogs, "zh-Hans")
    page = env.get_template("page.html").render(who="<script>x</script>")
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


@pytest.mark.parametrize("locale", LOCALES)
def test_text_from_code_is_escaped_translated_or_not(catalogs: Catalogs, locale: str) -> None:
    # F8: _() marks a catalog's text safe; a message from code must not get that
    # trust, even when it matches a catalog entry that holds markup.
    env = jinja_environment(LOADER, catalogs, locale)
    code = env.get_template("code.html")
    assert code.render(message="<img src=x onerror=alert(1)>") == (
        "&lt;img src=x onerror=alert(1)&gt;"
    )
    expected = "&lt;b&gt;粗体&lt;/b&gt;" if locale == "zh-Hans" else "&lt;b&gt;bold&lt;/b&gt;"
    assert code.render(message="<b>bold</b>") == expected
    # Not read as a %-format either: a stray % in a message is text.
    assert code.render(message="100% %(x)s") == "100% %(x)s"


def test_plain_text_mail_is_not_html_escaped(catalogs: Catalogs) -> None:
    env = jinja_environment(LOADER, catalogs, "zh-Hans")
    text = env.get_template("mail.txt").render(link="https://x.example/a?b=1&c=2")
    assert text == "https://x.example/a?b=1&c=2 登录"


def test_a_missing_value_is_an_error_not_an_empty_string(catalogs: Catalogs) -> None:
    with pytest.raises(UndefinedError):
        jinja_environment(LOADER, catalogs, "en").get_template("strict.html").render()
