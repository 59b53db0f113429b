"""S12: failures without a device cookie count per source network, so the
network an address belongs to must be stable for every spelling of it."""

from __future__ import annotations

import pytest

from userservice.security.networks import source_network


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("10.0.0.5", "10.0.0.0/24"),
        ("10.0.0.255", "10.0.0.0/24"),
        ("10.0.1.5", "10.0.1.0/24"),
        ("192.168.1.7", "192.168.1.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        # An IPv4 client seen through a dual-stack socket is the same IPv4 client.
        ("::ffff:10.0.0.5", "10.0.0.0/24"),
        ("::ffff:0a00:0063", "10.0.0.0/24"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_addresses_map_to_their_network(address: str, network: str) -> None:
    assert source_network(address) == network


@pytest.mark.parametrize("peer", ["testclient", "unknown", "", "10.0.0.300", "unix:/run/x.sock"])
def test_a_peer_that_is_no_address_is_its_own_network(peer: str) -> None:
    # Never merged with a real network, and never an error (no 500 for any input).
    assert source_network(peer) == f"peer:{peer}"
