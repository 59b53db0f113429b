"""The embedded default's TLS: a local CA, kept across restarts, and a server
certificate it signs, re-issued at start when it nears its end (S10).

Strict verifiers (RFC 5280 path validation with the CA/Browser Forum's rules, as in
browsers, Go and cryptography's policy verifier) refuse a self-signed CA:TRUE
certificate used as a server certificate even when it is trusted, so the trust
anchor and the server's certificate are two certificates here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from userservice.security.files import write_private

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
# Earlier releases made one self-signed CA:TRUE pair under these names.
LEGACY_FILES = ("localhost.crt", "localhost.key")
BUILTIN_NAMES = ("localhost", "127.0.0.1", "::1")
# CA/Browser Forum Baseline Requirements 6.3.2: a TLS server certificate lives at
# most 398 days; one day less leaves room for clock skew.
SERVER_LIFETIME = dt.timedelta(days=397)
RENEW_WITHIN = dt.timedelta(days=30)
CA_LIFETIME = dt.timedelta(days=10 * 365)
BACKDATE = dt.timedelta(minutes=5)  # clients whose clock is a little behind
# Mozilla's "intermediate" TLS 1.2 suites: forward secret and AEAD only, so no CBC
# suite (Lucky13-style padding oracles) is offered; TLS 1.3's suites are all AEAD and
# are not affected by this string.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

Name = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class LocalTls:
    ca: Path
    cert: Path
    key: Path
    # What changed on disk, for the operator's log: (logging level, text). A CA that
    # replaces one is a warning, since clients must be told to trust it anew.
    notes: tuple[tuple[int, str], ...] = ()


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 or later, TLS 1.2 with AEAD suites only (S10)."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    return context


def server_names(extra: Iterable[str] = ()) -> list[Name]:
    """The built-in local names plus `extra` (DNS names or IP addresses), deduplicated;
    a ValueError names the first value that is neither."""
    names: list[Name] = []
    for raw in (*BUILTIN_NAMES, *extra):
        name = _parse_name(raw)
        if name not in names:
            names.append(name)
    return names


def _parse_name(raw: str) -> Name:
    value = raw.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    host = value.lower().removesuffix(".")
    # A-labels only (RFC 5890): SAN dNSName is IA5String; no wildcards, which name
    # constraints and a local CA have no use for; an all-numeric last label is a
    # mistyped address (RFC 3696 2), not a host name.
    labels = host.split(".")
    if len(host) > 253 or labels[-1].isdigit() or not all(map(_LABEL.match, labels)):
        raise ValueError(f"{raw!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host)


def ensure_local_tls(
    directory: Path, extra_names: Sequence[str] = (), *, now: dt.datetime | None = None
) -> LocalTls:
    """Create or renew what is missing, stale or no longer fitting; return the paths."""
    names = server_names(extra_names)
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = LocalTls(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
    notes = _remove_legacy(directory, files.ca)
    ca, unfit = _load_ca(directory, names, now)
    if ca is None:
        if unfit:
            text = f"made a new local CA for {_describe(names)} ({unfit}): clients must"
            notes.append((logging.WARNING, f"{text} trust {files.ca} instead of the old one"))
        else:
            text = f"made a local CA for {_describe(names)}: clients trust {files.ca}"
            notes.append((logging.INFO, f"{text} (e.g. curl --cacert)"))
        ca = _new_ca(directory, names, now)
    if not _leaf_fits(files, ca[0], names, now):
        _issue_server_cert(files, ca, names, now)
    return LocalTls(files.ca, files.cert, files.key, tuple(notes))


def _describe(names: Iterable[Name]) -> str:
    return ", ".join(str(name.value) for name in names)


def _remove_legacy(directory: Path, ca_path: Path) -> list[tuple[int, str]]:
    legacy = [directory / name for name in LEGACY_FILES]
    if not any(path.exists() for path in legacy):
        return []
    # The old pair was its own CA (CA:TRUE) with its key beside it: whoever trusted it
    # would trust anything signed with that key, so it goes rather than lingers.
    for path in legacy:
        path.unlink(missing_ok=True)
    text = f"removed the old self-signed {legacy[0].name} and its key: clients must trust"
    return [(logging.WARNING, f"{text} {ca_path} instead")]


def _load_ca(
    directory: Path, names: Sequence[Name], now: dt.datetime
) -> tuple[tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, str]:
    """The kept CA if it is readable, matches its key, outlives a whole server
    certificate and may certify every name; else None and why not."""
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None, "the kept one was unreadable"
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None, "the kept one did not match its key"
    if cert.not_valid_after_utc < now + SERVER_LIFETIME:
        return None, "the kept one was about to expire"
    permitted = constraints.permitted_subtrees or []
    uncovered = [name for name in names if not _permits(permitted, name)]
    if uncovered:
        return None, f"the configured names changed: {_describe(uncovered)} added"
    return (cert, key), ""


def _permits(subtrees: Iterable[x509.GeneralName], name: Name) -> bool:
    return any(_within(tree, name) for tree in subtrees)


def _within(tree: x509.GeneralName, name: Name) -> bool:
    if isinstance(name, x509.IPAddress) and isinstance(tree, x509.IPAddress):
        network = tree.value
        return isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and (
            name.value in network
        )
    if isinstance(name, x509.DNSName) and isinstance(tree, x509.DNSName):
        # RFC 5280 4.2.1.10: a dNSName subtree covers the name and its subdomains.
        return name.value == tree.value or name.value.endswith("." + tree.value)
    return False


def _subtree(name: Name) -> x509.GeneralName:
    if isinstance(name, x509.DNSName):
        return name
    return x509.IPAddress(ipaddress.ip_network(name.value))


def _new_ca(
    directory: Path, names: Sequence[Name], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"userservice local CA {now:%Y-%m-%d %H:%M:%S}")]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        # Path length 0 and name constraints: were the key stolen, it could sign
        # neither another CA nor a certificate for any other site (RFC 5280 4.2.1.9-10).
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[_subtree(name) for name in names], excluded_subtrees=None
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(directory / CA_KEY, _key_pem(key))
    write_private(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs only; an ECDHE server signs its handshakes only."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_fits(
    files: LocalTls, ca: x509.Certificate, names: Sequence[Name], now: dt.datetime
) -> bool:
    """The kept server certificate: signed by this CA, for exactly these names, with
    its key, and more than RENEW_WITHIN left."""
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), None)
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return (
        key.public_key() == cert.public_key()
        and set(san) == set(names)
        and cert.not_valid_before_utc <= now
        and cert.not_valid_after_utc - now > RENEW_WITHIN
    )


def _issue_server_cert(
    files: LocalTls,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    names: Sequence[Name],
    now: dt.datetime,
) -> None:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        # The whole validity period counts, backdating included.
        .not_valid_after(min(now - BACKDATE + SERVER_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: a crash between the two writes leaves a mismatch, which the next
    # start detects and re-issues, never a certificate served with an old key.
    write_private(files.key, _key_pem(key))
    write_private(files.cert, cert.public_bytes(serialization.Encoding.PEM))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
