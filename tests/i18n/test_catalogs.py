"""Every message the pages and mails can show has a reviewed Simplified Chinese
translation: extracted from the source as `pybabel extract -F babel.cfg` does
(templates' _() and {% trans %}, Python's _() and N_()), and looked up in every
.po file of the language, whoever owns it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from userservice.i18n import DEFAULT_LOCALE, LOCALES, Catalogs, catalog_dir
from userservice.i18n.catalogs import LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "userservice"
TRANSLATED = [locale for locale in LOCALES if locale != DEFAULT_LOCALE]
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%s|\{[a-z_]*\}")
_TAG = re.compile(r"</?[a-z]+[^>]*>")


def extracted() -> dict[str, list[str]]:
    """msgid -> where it is used."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PACKAGE, method_map, options_map
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def entries(locale: str) -> Iterator[tuple[Path, Message]]:
    for path in sorted((LOCALE_DIR / catalog_dir(locale) / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po, locale=catalog_dir(locale)):
                if message.id:
                    yield path, message


def _ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def test_extraction_sees_templates_and_python() -> None:
    # The checks below are only as good as the extraction: a template string, a
    # {% trans %} block and an N_() in Python are all found.
    found = extracted()
    assert "Sign in" in found
    assert "You are signed in as <strong>%(email)s</strong>." in found
    assert "Incorrect email or password." in found
    assert any("scopes.py" in where for where in found["See your display name"])


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_has_a_reviewed_translation(locale: str) -> None:
    translated = {
        msgid
        for _path, message in entries(locale)
        if not message.fuzzy and all(_strings(message))
        for msgid in _ids(message)
    }
    missing = {msgid: where for msgid, where in extracted().items() if msgid not in translated}
    assert missing == {}, f"untranslated in {locale}: " + "\n".join(
        f"{msgid!r} ({', '.join(where)})" for msgid, where in sorted(missing.items())
    )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_placeholders_and_markup(locale: str) -> None:
    # F8: a translation that drops %(email)s or adds a tag changes what the page
    # shows; one that adds a placeholder makes the render fail.
    wrong = []
    for path, message in entries(locale):
        for msgid in _ids(message):
            for text in _strings(message):
                for pattern in (_PLACEHOLDER, _TAG):
                    if sorted(pattern.findall(msgid)) != sorted(pattern.findall(text)):
                        wrong.append(f"{path.name}: {msgid!r} -> {text!r}")
    assert wrong == []


@pytest.mark.parametrize("locale", TRANSLATED)
def test_no_stale_or_doubled_entries(locale: str) -> None:
    """A catalog entry no source uses any more, or one in two owners' files with
    different translations, is a translation nobody reviews."""
    used = extracted()
    seen: dict[str, tuple[str, str]] = {}
    stale, clashing = [], []
    for path, message in entries(locale):
        for msgid in _ids(message):
            if msgid not in used:
                stale.append(f"{path.name}: {msgid!r}")
            earlier = seen.get(msgid)
            if earlier and earlier[1] != str(message.string):
                clashing.append(f"{msgid!r} in {earlier[0]} and {path.name}")
            seen[msgid] = (path.name, str(message.string))
    assert stale == []
    assert clashing == []


def test_every_language_has_a_catalog_and_every_catalog_a_language() -> None:
    folders = {path.name for path in LOCALE_DIR.iterdir() if path.is_dir()}
    assert folders == {catalog_dir(locale) for locale in TRANSLATED}
    for locale in TRANSLATED:
        assert list((LOCALE_DIR / catalog_dir(locale) / "LC_MESSAGES").glob("*.po"))


def test_no_compiled_catalogs_are_kept() -> None:
    # Catalogs compile in memory when the app starts: a .mo beside them would be a
    # second, possibly older, copy.
    assert list(LOCALE_DIR.rglob("*.mo")) == []


def test_catalogs_load_every_owners_file_and_skip_fuzzy(tmp_path: Path) -> None:
    folder = tmp_path / catalog_dir("zh-Hans") / "LC_MESSAGES"
    folder.mkdir(parents=True)
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
    (folder / "a.po").write_text(header + 'msgid "Sign in"\nmsgstr "登录"\n', encoding="utf-8")
    (folder / "b.po").write_text(
        header + 'msgid "Password"\nmsgstr "密码"\n\n#, fuzzy\nmsgid "Deny"\nmsgstr "拒绝"\n',
        encoding="utf-8",
    )
    catalogs = Catalogs.load(tmp_path)
    assert catalogs.gettext("zh-Hans", "Sign in") == "登录"
    assert catalogs.gettext("zh-Hans", "Password") == "密码"
    assert catalogs.gettext("zh-Hans", "Deny") == "Deny"
    assert catalogs.gettext("en", "Sign in") == "Sign in"
    # A stored tag that is no supported locale falls back to its closest, else English.
    assert catalogs.gettext("zh-CN", "Sign in") == "登录"
    assert catalogs.gettext("fr", "Sign in") == "Sign in"
