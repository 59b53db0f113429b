"""Which language a page gets: OIDC ui_locales first (OIDC Core §3.1.2.1), then
the switch's cookie, then Accept-Language by q-value (RFC 9110 §12.5.4); any
input, however odd, gives a member of LOCALES (F9)."""

from __future__ import annotations

import pytest

from userservice.i18n import DEFAULT_LOCALE, LOCALES, match_locale, negotiate


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("EN-us", "en"),
        ("zh-Hans", "zh-Hans"),
        ("zh-hans-CN", "zh-Hans"),
        ("zh", "zh-Hans"),  # written in Simplified script (CLDR likely subtags)
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-TW", None),  # Traditional: not what we offer
        ("zh-Hant", None),
        ("zh-HK", None),
        ("fr", None),
        ("", None),
        (None, None),
        ("*", None),
        ("x-klingon", None),
        ("en_US", None),  # not BCP 47
        ("zh-" + "a" * 40, None),
        ("<script>", None),
        ("en\r\nSet-Cookie: a=b", None),
    ],
)
def test_match_locale(tag: str | None, expected: str | None) -> None:
    assert match_locale(tag) == expected


def test_ui_locales_wins_over_cookie_and_header() -> None:
    assert negotiate("zh-CN en", "en", "en") == "zh-Hans"
    # The first supported tag of the space-separated list wins.
    assert negotiate("fr de-CH en zh", "zh-Hans", "zh") == "en"


def test_an_unsupported_ui_locales_falls_through_to_the_cookie() -> None:
    assert negotiate("fr zh-TW", "zh-Hans", "en") == "zh-Hans"
    assert negotiate("", "zh-Hans", "en") == "zh-Hans"


def test_the_cookie_wins_over_the_header() -> None:
    assert negotiate(None, "en", "zh-CN,zh;q=0.9") == "en"
    assert negotiate(None, "zh-Hans", "en-US,en;q=0.9") == "zh-Hans"


def test_a_cookie_that_is_no_locale_is_ignored() -> None:
    assert negotiate(None, "zh-Hans'><script>", "zh-CN") == "zh-Hans"
    assert negotiate(None, "../../etc/passwd", None) == DEFAULT_LOCALE


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh;q=0.5, en;q=0.4", "zh-Hans"),
        ("en;q=0.1, zh-CN;q=0.9", "zh-Hans"),  # by weight, not by position
        ("zh-CN;q=0, en;q=0.1", "en"),  # q=0: not acceptable
        ("zh-TW, zh-HK;q=0.9", DEFAULT_LOCALE),
        ("*", DEFAULT_LOCALE),
        ("zh-CN;q=abc", DEFAULT_LOCALE),
        ("zh-CN;q=2", DEFAULT_LOCALE),
        (";;;,,,", DEFAULT_LOCALE),
        ("", DEFAULT_LOCALE),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert negotiate(None, None, header) == expected


def test_nothing_known_gives_the_default() -> None:
    assert negotiate(None, None, None) == DEFAULT_LOCALE == "en"


def test_a_huge_header_is_cut_not_parsed_whole() -> None:
    # Only the first tags count: a megabyte of tags costs no more than a few.
    header = ",".join(["fr"] * 100_000 + ["zh-CN"])
    assert negotiate(None, None, header) == DEFAULT_LOCALE
    assert negotiate(" ".join(["fr"] * 100_000 + ["zh"]), None, None) == DEFAULT_LOCALE


def test_the_answer_is_always_offered() -> None:
    odd = ["", "x", "zh-Hans-CN-u-ca-chinese", "i-default", "en-" * 20, "\x00", "zh;q=1"]
    for a in odd:
        for b in odd:
            assert negotiate(a, b, a) in LOCALES
