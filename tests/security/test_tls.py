"""S10: the embedded default's local CA and server certificate pass a strict
RFC 5280 / CA/Browser Forum verifier (cryptography's policy verifier), renew before
they expire, and stay private on disk."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tests.support.tls import load_cert as _cert
from tests.support.tls import strict_verify, write_legacy_self_signed
from userservice.security.tls import LocalTls, ensure_local_tls, harden, server_names


def _verify(files: LocalTls, subject: x509.DNSName | x509.IPAddress) -> None:
    """Raises VerificationError unless the server certificate is valid for `subject`
    with only ca.crt trusted."""
    strict_verify(files.ca, _cert(files.cert), subject)


def _ip(value: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(value))


def test_a_strict_verifier_accepts_the_server_certificate_for_every_local_name(
    tmp_path: Path,
) -> None:
    files = ensure_local_tls(tmp_path / "tls")
    for subject in (x509.DNSName("localhost"), _ip("127.0.0.1"), _ip("::1")):
        _verify(files, subject)
    with pytest.raises(VerificationError):
        _verify(files, x509.DNSName("example.com"))


def test_the_certificates_have_the_server_and_ca_profiles(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls", ["id.example.test", "10.0.0.5"])
    leaf, ca = _cert(files.cert), _cert(files.ca)
    ext = leaf.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert set(ext.get_extension_for_class(x509.SubjectAlternativeName).value) == {
        x509.DNSName("localhost"),
        _ip("127.0.0.1"),
        _ip("::1"),
        x509.DNSName("id.example.test"),
        _ip("10.0.0.5"),
    }
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=397)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    leaf.verify_directly_issued_by(ca)

    ca_basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_basic.critical and ca_basic.value.ca and ca_basic.value.path_length == 0
    ca_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign and ca_usage.crl_sign and not ca_usage.digital_signature
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees or []) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
        x509.DNSName("id.example.test"),
        x509.IPAddress(ipaddress.ip_network("10.0.0.5/32")),
    }
    _verify(files, x509.DNSName("id.example.test"))
    _verify(files, _ip("10.0.0.5"))


def test_the_ca_cannot_certify_a_name_outside_its_constraints(tmp_path: Path) -> None:
    """Were ca.key stolen, a certificate it signs for another site is still refused."""
    directory = tmp_path / "tls"
    files = ensure_local_tls(directory)
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    template = _cert(files.cert)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
        .issuer_name(template.issuer)
        .public_key(template.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(template.extensions.get_extension_for_class(x509.KeyUsage).value, True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            template.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value, False
        )
        .sign(ca_key, hashes.SHA256())
    )
    verifier = (
        PolicyBuilder()
        .store(Store([_cert(files.ca)]))
        .time(dt.datetime.now(dt.UTC))  # the moment of this test, not of collection
        .build_server_verifier(x509.DNSName("bank.example"))
    )
    with pytest.raises(VerificationError, match=r"(?i)name constraint"):
        verifier.verify(forged, [])


def test_a_restart_keeps_the_ca_and_the_certificate(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path / "tls")
    # The operator learns what to trust; nothing to warn about on a first start.
    assert [level for level, _ in first.notes] == [logging.INFO]
    assert str(first.ca) in first.notes[0][1]
    kept = {path: path.read_bytes() for path in (first.ca, first.cert, first.key)}
    second = ensure_local_tls(tmp_path / "tls")
    assert second.notes == ()
    assert {path: path.read_bytes() for path in (second.ca, second.cert, second.key)} == kept


@pytest.mark.parametrize(("days_left", "renewed"), [(29, True), (31, False)])
def test_the_certificate_is_renewed_when_fewer_than_30_days_remain(
    tmp_path: Path, days_left: int, renewed: bool
) -> None:
    now = dt.datetime.now(dt.UTC)
    issued_at = now - dt.timedelta(days=397 - days_left)
    old = ensure_local_tls(tmp_path / "tls", now=issued_at)
    old_ca, old_cert = old.ca.read_bytes(), old.cert.read_bytes()
    new = ensure_local_tls(tmp_path / "tls")
    assert new.ca.read_bytes() == old_ca  # clients keep trusting the same CA
    assert (new.cert.read_bytes() != old_cert) is renewed
    leaf = _cert(new.cert)
    assert leaf.not_valid_after_utc - now > dt.timedelta(days=30)
    _verify(new, x509.DNSName("localhost"))


def test_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    directory.mkdir(mode=0o755)
    files = ensure_local_tls(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert {path.name for path in directory.iterdir()} == {
        "ca.crt",
        "ca.key",
        files.cert.name,
        files.key.name,
    }


def test_new_names_make_a_new_ca_and_fewer_names_keep_it(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    first = ensure_local_tls(directory)
    first_ca = first.ca.read_bytes()
    grown = ensure_local_tls(directory, ["id.example.test"])
    assert grown.ca.read_bytes() != first_ca
    assert any(
        level == logging.WARNING and "id.example.test" in text and str(grown.ca) in text
        for level, text in grown.notes
    )
    _verify(grown, x509.DNSName("id.example.test"))
    grown_ca = grown.ca.read_bytes()
    shrunk = ensure_local_tls(directory)
    assert shrunk.notes == () and shrunk.ca.read_bytes() == grown_ca
    with pytest.raises(VerificationError):
        _verify(shrunk, x509.DNSName("id.example.test"))
    _verify(shrunk, x509.DNSName("localhost"))


@pytest.mark.parametrize(
    "bad", ["*.example.com", "exa mple.com", "-a.example", "é.example", "010.0.0.1", "", "a" * 64]
)
def test_a_name_that_is_neither_dns_nor_ip_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        server_names([bad])


def test_names_are_normalised_and_deduplicated() -> None:
    assert server_names(["LOCALHOST", "Id.Example.Test.", "[::1]", "10.0.0.5"]) == [
        x509.DNSName("localhost"),
        _ip("127.0.0.1"),
        _ip("::1"),
        x509.DNSName("id.example.test"),
        _ip("10.0.0.5"),
    ]


def test_the_old_self_signed_pair_is_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    write_legacy_self_signed(directory)
    files = ensure_local_tls(directory)
    assert not (directory / "localhost.crt").exists()
    assert not (directory / "localhost.key").exists()
    assert any(
        level == logging.WARNING and "localhost.crt" in text and str(files.ca) in text
        for level, text in files.notes
    )
    _verify(files, x509.DNSName("localhost"))


def test_a_damaged_server_certificate_is_issued_again(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "tls")
    ca = files.ca.read_bytes()
    files.cert.write_bytes(b"not a certificate")
    again = ensure_local_tls(tmp_path / "tls")
    assert again.ca.read_bytes() == ca
    _verify(again, x509.DNSName("localhost"))


def test_harden_offers_tls_1_2_with_aead_suites_only() -> None:
    context = harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = [cipher for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"]
    assert tls12 and all(cipher["aead"] and cipher["kea"] == "kx-ecdhe" for cipher in tls12)
