"""Redirect URIs: what a client may register, and how a sent one is matched.

Registration is strict so that matching can be plain string equality: RFC 9700
§2.1 and §4.1.3 require exact matching, and every normalisation we might apply
(case, dot segments, percent-decoding) is one an attacker can aim at (A1).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from userservice.errors import InvalidClientMetadata, InvalidInput, InvalidRedirectUri

MAX_URI_LENGTH = 2000
MAX_URIS = 20
# RFC 8252 §7.3: native apps listen on an ephemeral port of a loopback IP literal.
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")

# Printable ASCII only: whitespace, control characters and non-ASCII have several
# readings (browsers strip tabs and newlines, IDNA maps look-alikes).
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_REG_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_PORT = re.compile(r"[0-9]{1,5}")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
# A sent loopback URI: host, optional port, then path and query (no fragment).
_SENT_LOOPBACK = re.compile(
    r"http://(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?([/?][\x21-\x22\x24-\x5b\x5d-\x7e]*)?"
)


def _split(uri: str) -> tuple[str, str, str, str]:
    """(scheme, host, port, path+query) of an absolute http(s) URI; ValueError if it
    is not one in the plain form we accept."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError("not an absolute URI")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        # `https://good.example@evil.example/` names evil.example (A1).
        raise ValueError("user information ('user@') is not allowed")
    if authority.startswith("["):
        host, bracket, port_part = authority.partition("]")
        host += bracket
        if not bracket:
            raise ValueError("unterminated IPv6 literal")
    else:
        host, _, port_part = authority.partition(":")
        port_part = ":" + port_part if ":" in authority else ""
    if port_part and not port_part.startswith(":"):
        raise ValueError("garbage after the host")
    port = port_part[1:]
    if port_part and (not _PORT.fullmatch(port) or int(port) > 65535):
        raise ValueError("bad port")
    return scheme, host, port, tail


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return len(host) <= 253 and _REG_NAME.fullmatch(host) is not None


def _check_text(uri: object, what: str, error: type[InvalidInput]) -> str:
    if not isinstance(uri, str) or not uri:
        raise error(f"{what} must be a non-empty string.")
    if len(uri) > MAX_URI_LENGTH:
        raise error(f"{what} is longer than {MAX_URI_LENGTH} characters.")
    if not _PRINTABLE.fullmatch(uri):
        raise error(
            f"{what} may contain only printable ASCII (no spaces, control or non-ASCII "
            "characters; percent-encode them)."
        )
    if "\\" in uri:
        raise error(f"{what} must not contain a backslash (browsers read it as '/').")
    return uri


def check_redirect_uri(uri: object, field: str = "redirect_uris") -> str:
    """One redirect URI as RFC 6749 §3.1.2, RFC 8252 and RFC 9700 §2.1 allow it."""
    what = f"{field}: {uri!r}"[:120] if isinstance(uri, str) else field
    text = _check_text(uri, what, InvalidRedirectUri)
    if "*" in text:
        raise InvalidRedirectUri(f"{what}: wildcards are not allowed (exact matching only).")
    if "#" in text:
        raise InvalidRedirectUri(f"{what}: a redirect URI must not have a fragment.")
    if not text.startswith(("https://", "http://")):
        scheme, colon, _ = text.partition(":")
        if not colon or not _SCHEME.fullmatch(scheme):
            raise InvalidRedirectUri(f"{what}: must be an absolute URI.")
        if scheme.lower() in ("http", "https"):
            raise InvalidRedirectUri(f"{what}: must start with 'https://' (lowercase).")
        raise InvalidRedirectUri(
            f"{what}: scheme '{scheme}' is not allowed; use https, or http with the "
            "loopback IP 127.0.0.1 or [::1]."
        )
    try:
        scheme, host, _port, tail = _split(text)
    except ValueError as exc:
        raise InvalidRedirectUri(f"{what}: not a valid URI ({exc}).") from None
    if not host or not _valid_host(host):
        raise InvalidRedirectUri(f"{what}: the host is missing or not a valid host name.")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        if host.lower() == "localhost":
            raise InvalidRedirectUri(
                f"{what}: use http://127.0.0.1 or http://[::1], not localhost (RFC 8252 §8.3)."
            )
        raise InvalidRedirectUri(
            f"{what}: http is allowed only for the loopback IP 127.0.0.1 or [::1] "
            "(RFC 8252 §7.3); use https."
        )
    path = tail.partition("?")[0]
    if _DOT_SEGMENT.search(path):
        raise InvalidRedirectUri(f"{what}: the path must not contain '.' or '..' segments.")
    return text


def check_redirect_uris(uris: object, field: str = "redirect_uris") -> list[str]:
    if not isinstance(uris, list | tuple):
        raise InvalidRedirectUri(f"{field} must be a list of URIs.")
    if len(uris) > MAX_URIS:
        raise InvalidRedirectUri(f"{field}: at most {MAX_URIS} URIs may be registered.")
    checked = [check_redirect_uri(uri, field) for uri in uris]
    if len(set(checked)) != len(checked):
        raise InvalidRedirectUri(f"{field}: the same URI is listed twice.")
    return checked


def check_web_uri(uri: object, field: str) -> str:
    """logo_uri / client_uri: a public https page, shown to users on consent."""
    text = _check_text(uri, field, InvalidClientMetadata)
    if not text.startswith("https://"):
        raise InvalidClientMetadata(f"{field} must be an https URI.")
    try:
        _scheme, host, _port, _tail = _split(text.partition("#")[0])
    except ValueError as exc:
        raise InvalidClientMetadata(f"{field} is not a valid URI ({exc}).") from None
    if not host or not _valid_host(host):
        raise InvalidClientMetadata(f"{field} needs a valid host name.")
    return text


def _loopback_parts(uri: str) -> tuple[str, str] | None:
    found = _SENT_LOOPBACK.fullmatch(uri)
    if found is None or (found.group(2) is not None and int(found.group(2)) > 65535):
        return None
    return found.group(1), found.group(3) or ""


def redirect_uri_matches(registered: Sequence[str], sent: str) -> bool:
    """Exact string equality (RFC 9700 §4.1.3), except that a registered loopback
    `http://127.0.0.1…` / `http://[::1]…` URI matches any port (RFC 8252 §7.3);
    scheme, host, path and query still have to be identical."""
    if not isinstance(sent, str) or len(sent) > MAX_URI_LENGTH:
        return False
    if sent in registered:
        return True
    sent_parts = _loopback_parts(sent)
    if sent_parts is None:
        return False
    return any(_loopback_parts(uri) == sent_parts for uri in registered)
