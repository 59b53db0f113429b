"""TOTP primitives (security/totp.py): RFC 6238's test vector, the ±1 step window
and the matched step (M1), what counts as a typed code, the URI and the QR code."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from userservice.security import totp

# RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890", 8 digits; our 6
# digits are the last six (RFC 4226 §5.3: the value modulo 10^6).
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = {59: "94287082", 1111111109: "07081804", 1234567890: "89005924"}


@pytest.mark.parametrize(("at", "expected"), sorted(RFC_VECTORS.items()))
def test_m1_codes_are_rfc_6238_sha1_six_digits(at: int, expected: str) -> None:
    assert totp.matched_step(RFC_SECRET, expected[-6:], at) == at // 30


def test_new_secret_is_160_random_bits_of_base32() -> None:
    secrets = {totp.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_m1_one_step_either_side_returns_that_step(offset: int) -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0
    code = pyotp.TOTP(secret).at(now + 30 * offset)
    assert totp.matched_step(secret, code, now) == int(now // 30) + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_m1_two_steps_away_is_refused(offset: int) -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0
    code = pyotp.TOTP(secret).at(now + 30 * offset)
    # A code of a far step may by chance equal a near one's (1 in 10^6): skip that.
    near = {pyotp.TOTP(secret).at(now + 30 * k) for k in (-1, 0, 1)}
    if code not in near:
        assert totp.matched_step(secret, code, now) is None


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "12345",
        "1234567",
        "12a456",
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345\x00",
        "abcdef",
        "-12345",
    ],
)
def test_only_six_ascii_digits_are_a_code(typed: str) -> None:
    assert totp.normalized(typed) is None
    assert totp.matched_step(totp.new_secret(), typed) is None


def test_spaces_inside_a_code_are_ignored() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).now()
    assert totp.normalized(f" {code[:3]} {code[3:]} ") == code
    assert totp.matched_step(secret, f"{code[:3]} {code[3:]}") == totp.time_step()


def test_wrong_secret_matches_nothing() -> None:
    code = pyotp.TOTP(totp.new_secret()).at(time.time())
    other = totp.new_secret()
    if code not in {pyotp.TOTP(other).at(time.time() + 30 * k) for k in (-1, 0, 1)}:
        assert totp.matched_step(other, code) is None


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ada@example.com", "Example IdP"
    )
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Example IdP:ada@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]
    assert query["issuer"] == ["Example IdP"]
    # The defaults every app honours: no parameter that some apps would ignore.
    assert not {"algorithm", "digits", "period"} & set(query)


def test_m1_qr_is_inline_svg_with_a_title_about_200_pixels() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "ada.lovelace@example.com", "userservice")
    svg = totp.qr_svg(uri, "userservice: <ada>")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    # The title is escaped: markup in an address cannot break out of it.
    assert "<title>userservice: &lt;ada&gt;</title>" in svg
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert 150 <= width <= 260
    assert "http" not in svg.replace(uri, "")  # drawn here, nothing fetched
