"""Helpers for the tests of the default certificate: the strict verifier and
the certificate pair that earlier releases left in the data directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def strict_verify(ca: Path, leaf: x509.Certificate, subject: x509.DNSName | x509.IPAddress) -> None:
    """RFC 5280 path validation with the CA/Browser Forum's profile checks
    (cryptography's policy verifier), trusting only `ca`; raises VerificationError."""
    verifier = (
        PolicyBuilder()
        .store(Store([load_cert(ca)]))
        .time(dt.datetime.now(dt.UTC))
        .build_server_verifier(subject)
    )
    verifier.verify(leaf, [])


def write_legacy_self_signed(directory: Path) -> None:
    """What earlier releases made on first start: one self-signed CA:TRUE localhost
    certificate, used both as the trust anchor and as the server's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "localhost.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "localhost.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
