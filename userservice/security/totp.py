"""Time-based one-time passwords (RFC 6238) for authenticator apps (M1).

Six digits, HMAC-SHA1, 30-second steps: RFC 6238's defaults and the only
parameters every authenticator app honours (others silently ignore the URI's
`algorithm`/`digits`/`period` and show wrong codes). A code is accepted within
one step either side of now (RFC 6238 §5.2: clock drift and typing time), and
the step it matched is returned so that storage can refuse that step and every
earlier one (a code is good once, §5.2). The QR code is drawn here (segno): the
secret never leaves the server for a third-party image service."""

from __future__ import annotations

import hmac
import time

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
# Steps either side of now that still count (RFC 6238 §5.2 recommends one).
TOLERANCE = 1
# About 200 CSS pixels across for the usual URI (QR version 6-8 with its border).
_QR_TARGET_PIXELS = 200


def new_secret() -> str:
    """160 random bits in base32 (the length RFC 4226 §4 recommends), from the OS CSPRNG."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI apps read from the QR code: label `issuer:account`,
    with `issuer` repeated as a parameter (the Key Uri Format)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def time_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP_SECONDS)


def normalized(code: str) -> str | None:
    """The six digits of a typed code (spaces ignored), or None when it is no code."""
    compact = "".join(code.split())
    if len(compact) != DIGITS or not compact.isascii() or not compact.isdigit():
        return None
    return compact


def matched_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step within ±TOLERANCE whose code `code` is, or None. Every
    candidate is compared, in constant time, whatever matched first: the answer's
    timing says nothing about which step or digit was right."""
    typed = normalized(code)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = time_step(at)
    found: int | None = None
    for step in range(now - TOLERANCE, now + TOLERANCE + 1):
        expected = totp.generate_otp(step)
        same = hmac.compare_digest(expected, typed if typed is not None else "x" * DIGITS)
        if same and typed is not None and found is None:
            found = step
    return found


def qr_svg(uri: str, title: str) -> str:
    """The URI as an inline <svg> element (no XML declaration: it goes inside a
    page), with a <title> that screen readers announce."""
    qr = segno.make(uri, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(2, round(_QR_TARGET_PIXELS / modules))
    svg: str = qr.svg_inline(scale=scale, border=4, title=title, dark="#000", light="#fff")
    return svg
