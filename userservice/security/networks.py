"""The source network of a client address (S12).

Failed logins without a device cookie count per (account, network): one
attacker's address, or the addresses a home or office router hands out, share a
budget, while the owner on another network keeps their own. /24 for IPv4 and /64
for IPv6: what one subscriber typically holds (RFC 6177), so rotating addresses
within it gains an attacker nothing.
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 64


def source_network(address: str) -> str:
    """`a.b.c.0/24` or `x:x:x:x::/64`; a peer that is not an IP address (a Unix
    socket, a test client) is a network of its own, `peer:<name>`."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"peer:{address}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
