"""The WebAuthn relying party, from the configured public URL alone (M9): never
from a request's Host header, so no forwarded or forged host can widen where a
passkey is accepted."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class RelyingParty:
    # WebAuthn L2 §5.1.2: a valid domain string; the origin every ceremony must
    # come from (scheme, host and port of the public URL).
    id: str
    origin: str
    name: str


def relying_party(public_url: str, name: str) -> RelyingParty | None:
    """None when the public URL's host is an IP address (or missing): browsers
    refuse an IP address as an RP ID, so passkeys are then not offered."""
    parts = urlsplit(public_url)
    host = parts.hostname
    if not host or not parts.scheme:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return RelyingParty(id=host.lower(), origin=f"{parts.scheme}://{host.lower()}{port}", name=name)
