"""The SMTP server a `mail_url` names, and the transport security it demands:
checked by the settings at startup and used by the SMTP transport."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


LOOPBACK_NAMES = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def smtp_server(url: str) -> SmtpServer:
    """`smtp://[user:password@]host[:port][?tls=none]` or `smtps://…`; ValueError
    for anything else. Plain SMTP would carry reset links and the login in clear
    over the network (L15): without TLS only to a relay on this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://…")
    options = parse_qs(parts.query)
    tls = options.pop("tls", ["required"])
    if options or tls not in (["required"], ["none"]):
        raise ValueError("the only option is ?tls=none (for a relay on this machine)")
    plain = tls == ["none"]
    if plain and (parts.scheme == "smtps" or not _loopback(parts.hostname)):
        raise ValueError("?tls=none is for smtp:// to a loopback address only")
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        implicit_tls=implicit,
        starttls=not implicit and not plain,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
