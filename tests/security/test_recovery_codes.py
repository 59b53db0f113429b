"""Recovery codes (security/recovery_codes.py, M2): ten codes of 80 random bits,
lowercase base32 in four groups, typed loosely, stored as SHA-256."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from userservice.security import recovery_codes

SHAPE = re.compile(r"[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}")


def test_m2_ten_codes_of_80_bits_in_four_groups() -> None:
    codes = recovery_codes.new_codes()
    assert len(codes) == 10 == recovery_codes.COUNT
    assert len(set(codes)) == 10
    for code in codes:
        assert SHAPE.fullmatch(code), code
        raw = base64.b32decode(code.replace("-", "").upper())
        assert len(raw) * 8 == 80


def test_m2_codes_are_random() -> None:
    # 2000 codes of 80 bits: a repeat would mean a broken generator.
    many = {recovery_codes.new_code() for _ in range(2000)}
    assert len(many) == 2000


@pytest.mark.parametrize(
    "typed",
    [
        "abcd-efgh-ijkl-mnop",
        "ABCD-EFGH-IJKL-MNOP",
        " abcd efgh ijkl mnop ",
        "abcdefghijklmnop",
        "abcd - efgh\t-ijkl-mnop\n",
    ],
)
def test_m2_case_spaces_and_dashes_do_not_matter(typed: str) -> None:
    assert recovery_codes.normalized(typed) == "abcdefghijklmnop"
    assert recovery_codes.looks_like_code(typed)
    expected = hashlib.sha256(b"abcdefghijklmnop").hexdigest()
    assert recovery_codes.code_digest(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["", "123456", "abcd-efgh-ijkl-mno", "abcd-efgh-ijkl-mnopq", "abcd-efgh-ijkl-mn0p", "ä" * 16],
)
def test_what_is_not_a_code(typed: str) -> None:
    assert not recovery_codes.looks_like_code(typed)


def test_m2_digest_is_sha256_hex_of_the_normalized_code() -> None:
    code = recovery_codes.new_code()
    digest = recovery_codes.code_digest(code)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert code.replace("-", "") not in digest
    assert recovery_codes.code_digest(code.upper()) == digest
