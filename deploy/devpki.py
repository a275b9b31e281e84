"""The development PKI: every key, certificate and secret a dev or test stack needs.

``ensure_dev_pki(data_dir)`` creates what is missing under ``data_dir`` and never
overwrites a file that exists, so it is safe to run on every ``make up``/``make test``
and from several processes at once (each file appears atomically; the first writer
wins and the others read its file). To start afresh, delete the directory. Layout::

    pki/root-ca          our dev root: signs the responder, TLS server and docsign certs
    pki/responder        OCSP responder signing certificate (OCSPSigning, ocsp-nocheck)
    pki/tls-server       the :8443 online channel's server certificate (localhost)
    pki/docsign          signs the agreement PDF (RSA 2048: PDF readers like it best)
    pki/demo-issuer-ca   a demo issuing authority with the seed's DN (MSANATATII CA)
    pki/demo-provider    the demo provider's client certificate, and a .p12 ("demo")
    secrets/token-signing.key, .pub.pem   Ed25519 key of the users service's JWTs
    secrets/license-pepper                HMAC key for licence serials (64 hex chars)
    secrets/data-key                      AES-256-GCM key for private keys at rest (hex)
    secrets/metrics-token                 bearer token Prometheus scrapes /metrics with (hex)

Directories are 0700, private keys and secrets 0600; keys are unencrypted PKCS#8 PEM.
CLI: ``python -m deploy.devpki [--data-dir DIR]`` (default ``$SIUI_DATA_DIR``, else
``.siui``) prints the paths, one ``name=path`` a line.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

DEMO_PROVIDER_P12_PASSPHRASE = b"demo"
DEMO_PROVIDER_CUI = "12433636"  # the seed's provider code (a valid CUI check digit)
DEMO_PROVIDER_NAME = "SC DEMO MEDICAL SRL"
# The demo issuer's DN as the seed writes it (and as `openssl x509 -subject` prints it).
DEMO_ISSUER_DN = "C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"
# Where the demo provider's certificate says its OCSP responder is (the ocsp service).
DEMO_OCSP_URL = "http://127.0.0.1:8104/"
SECRET_BYTES = 32
# notBefore is set back a little so that a client whose clock lags still accepts.
BACKDATE = timedelta(hours=1)


@dataclass(frozen=True)
class DevPki:
    """Where ``ensure_dev_pki`` put each file (absolute paths)."""

    data_dir: Path
    root_ca_cert: Path
    root_ca_key: Path
    responder_cert: Path
    responder_key: Path
    tls_server_cert: Path
    tls_server_key: Path
    docsign_cert: Path
    docsign_key: Path
    demo_issuer_cert: Path
    demo_issuer_key: Path
    demo_provider_cert: Path
    demo_provider_key: Path
    demo_provider_p12: Path
    token_signing_key: Path
    token_signing_public_key: Path
    license_pepper: Path
    data_key: Path
    metrics_token: Path

    @classmethod
    def at(cls, data_dir: Path) -> "DevPki":
        """The layout under ``data_dir``, without touching the disk."""
        root = Path(data_dir).resolve()
        pki, sec = root / "pki", root / "secrets"
        return cls(
            data_dir=root,
            root_ca_cert=pki / "root-ca.pem",
            root_ca_key=pki / "root-ca.key",
            responder_cert=pki / "responder.pem",
            responder_key=pki / "responder.key",
            tls_server_cert=pki / "tls-server.pem",
            tls_server_key=pki / "tls-server.key",
            docsign_cert=pki / "docsign.pem",
            docsign_key=pki / "docsign.key",
            demo_issuer_cert=pki / "demo-issuer-ca.pem",
            demo_issuer_key=pki / "demo-issuer-ca.key",
            demo_provider_cert=pki / "demo-provider.pem",
            demo_provider_key=pki / "demo-provider.key",
            demo_provider_p12=pki / "demo-provider.p12",
            token_signing_key=sec / "token-signing.key",
            token_signing_public_key=sec / "token-signing.pub.pem",
            license_pepper=sec / "license-pepper",
            data_key=sec / "data-key",
            metrics_token=sec / "metrics-token",
        )


@dataclass(frozen=True)
class _Pair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class _Spec:
    """What a certificate should say; SKI and AKI are added for every one."""

    subject: x509.Name
    days: int
    extensions: tuple[tuple[x509.ExtensionType, bool], ...]  # (value, critical)
    issuer: _Pair | None = None  # None: self-signed
    use_rsa: bool = False  # else EC P-256
    serial: int | None = None


def ensure_dev_pki(data_dir: Path, *, now: datetime | None = None) -> DevPki:
    """Create whatever is missing of the dev PKI under ``data_dir``; return the paths.

    ``now`` sets the new certificates' validity start (tests); default: the current
    time. Raises ``FileExistsError`` when a certificate exists without its private
    key, as no new key could match it: delete that certificate, or the directory.
    Nothing is renewed: an expired certificate (the demo provider's lasts a year) is
    replaced by deleting it; a certificate alone is reissued for its existing key.
    """
    now = now or datetime.now(timezone.utc)
    paths = DevPki.at(data_dir)
    for directory in (paths.data_dir, paths.data_dir / "pki", paths.data_dir / "secrets"):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode passes through the umask

    root = _ensure_pair(paths.root_ca_cert, paths.root_ca_key, _root_ca(), now)
    _ensure_pair(paths.responder_cert, paths.responder_key, _responder(root), now)
    _ensure_pair(paths.tls_server_cert, paths.tls_server_key, _tls_server(root), now)
    _ensure_pair(paths.docsign_cert, paths.docsign_key, _docsign(root), now)
    demo_ca = _ensure_pair(
        paths.demo_issuer_cert, paths.demo_issuer_key, _demo_issuer(), now
    )
    provider = _ensure_pair(
        paths.demo_provider_cert, paths.demo_provider_key, _demo_provider(demo_ca), now
    )
    if not paths.demo_provider_p12.exists():
        bundle = pkcs12.serialize_key_and_certificates(
            name=f"{DEMO_PROVIDER_NAME} ({DEMO_PROVIDER_CUI})".encode(),
            key=provider.key,
            cert=provider.cert,
            cas=[demo_ca.cert],
            encryption_algorithm=serialization.BestAvailableEncryption(
                DEMO_PROVIDER_P12_PASSPHRASE
            ),
        )
        _write_once(paths.demo_provider_p12, bundle, 0o600)

    if not paths.token_signing_key.exists():
        token_key = ed25519.Ed25519PrivateKey.generate()
        _write_once(paths.token_signing_key, _pkcs8(token_key), 0o600)
    if not paths.token_signing_public_key.exists():
        token_key = serialization.load_pem_private_key(
            paths.token_signing_key.read_bytes(), password=None
        )
        spki = token_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_once(paths.token_signing_public_key, spki, 0o644)
    for secret in (paths.license_pepper, paths.data_key, paths.metrics_token):
        if not secret.exists():
            # No trailing newline: the file's bytes are exactly the 64 hex characters.
            _write_once(secret, secrets.token_hex(SECRET_BYTES).encode(), 0o600)
    return paths


# -- the certificates ---------------------------------------------------------------


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _end_entity(ku: x509.KeyUsage) -> tuple[tuple[x509.ExtensionType, bool], ...]:
    return ((x509.BasicConstraints(ca=False, path_length=None), True), (ku, True))


def _key_usage(**set_bits: bool) -> x509.KeyUsage:
    bits = dict.fromkeys(
        ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
         "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"),
        False,
    )
    bits.update(set_bits)
    return x509.KeyUsage(**bits)


_CA_EXTENSIONS = (
    (x509.BasicConstraints(ca=True, path_length=None), True),
    (_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
)


def _dev_subject(common_name: str) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "RO"),
        (NameOID.ORGANIZATION_NAME, "SIUI Access (dev)"),
        (NameOID.COMMON_NAME, common_name),
    )


def _root_ca() -> _Spec:
    return _Spec(_dev_subject("SIUI Access Dev Root CA"), 3650, _CA_EXTENSIONS)


def _responder(root: _Pair) -> _Spec:
    extensions = _end_entity(_key_usage(digital_signature=True)) + (
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
        (x509.OCSPNoCheck(), False),
    )
    return _Spec(_dev_subject("SIUI Access OCSP Responder"), 730, extensions, root)


def _tls_server(root: _Pair) -> _Spec:
    san = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    extensions = _end_entity(_key_usage(digital_signature=True)) + (
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (san, False),
    )
    # 397 days: the longest a TLS client is sure to accept for a server certificate.
    return _Spec(_dev_subject("localhost"), 397, extensions, root)


def _docsign(root: _Pair) -> _Spec:
    subject = _name(
        (NameOID.COUNTRY_NAME, "RO"),
        (NameOID.ORGANIZATION_NAME, "CASA NATIONALA DE ASIGURARI DE SANATATE"),
        (NameOID.COMMON_NAME, "SIUI Access Semnare Documente (dev)"),
    )
    ku = _key_usage(digital_signature=True, content_commitment=True)
    return _Spec(subject, 1095, _end_entity(ku), root, use_rsa=True)


def _demo_issuer() -> _Spec:
    subject = _name(  # the seed's issuer DN, in the seed's order
        (NameOID.COUNTRY_NAME, "RO"),
        (NameOID.STATE_OR_PROVINCE_NAME, "ROMANIA"),
        (NameOID.LOCALITY_NAME, "BUCURESTI"),
        (NameOID.ORGANIZATION_NAME, "MINISTERUL SANATATII"),
        (NameOID.COMMON_NAME, "MSANATATII CA"),
    )
    return _Spec(subject, days=3650, extensions=_CA_EXTENSIONS)


def _demo_provider(demo_ca: _Pair) -> _Spec:
    subject = _name(
        (NameOID.COUNTRY_NAME, "RO"),
        (NameOID.ORGANIZATION_NAME, DEMO_PROVIDER_NAME),
        (NameOID.COMMON_NAME, DEMO_PROVIDER_CUI),
    )
    ocsp = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(DEMO_OCSP_URL)
    )
    extensions = _end_entity(_key_usage(digital_signature=True)) + (
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.AuthorityInformationAccess([ocsp]), False),
    )
    # A positive serial of exactly 16 octets in DER: top bit clear, the next one set.
    serial = (int.from_bytes(os.urandom(16), "big") >> 2) | (1 << 126)
    return _Spec(subject, 365, extensions, demo_ca, serial=serial)


def _ensure_pair(cert_path: Path, key_path: Path, spec: _Spec, now: datetime) -> _Pair:
    """Load the certificate and key, making whichever is missing."""
    if cert_path.exists() and not key_path.exists():
        raise FileExistsError(f"{cert_path} exists without its key {key_path}; delete it")
    if not key_path.exists():
        if spec.use_rsa:
            new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            new_key = ec.generate_private_key(ec.SECP256R1())
        _write_once(key_path, _pkcs8(new_key), 0o600)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not cert_path.exists():
        cert = _build(spec, key.public_key(), now) if spec.issuer else _self_signed(spec, key, now)
        _write_once(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return _Pair(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)


def responder_certificate(data_dir: Path, public_key, *, common_name: str = "SIUI Access OCSP Responder",
                          days: int = 730, now: datetime | None = None) -> x509.Certificate:
    """A responder certificate like ``pki/responder`` for a key held elsewhere (an HSM's:
    ``deploy.hsm``), issued by the dev root of ``data_dir`` (made if missing)."""
    paths = ensure_dev_pki(data_dir)
    root = _Pair(x509.load_pem_x509_certificate(paths.root_ca_cert.read_bytes()),
                 serialization.load_pem_private_key(paths.root_ca_key.read_bytes(), password=None))
    spec = _responder(root)
    spec = _Spec(_dev_subject(common_name), days, spec.extensions, root)
    return _build(spec, public_key, now or datetime.now(timezone.utc))


def _build(spec: _Spec, public_key, now: datetime) -> x509.Certificate:
    if spec.issuer is None:
        raise ValueError("a self-signed certificate is built from its private key")
    return _signed(spec, public_key, spec.issuer.key, now)


def _self_signed(spec: _Spec, key, now: datetime) -> x509.Certificate:
    return _signed(spec, key.public_key(), key, now)


def _signed(spec: _Spec, public_key, signing_key, now: datetime) -> x509.Certificate:
    issuer_name = spec.issuer.cert.subject if spec.issuer else spec.subject
    issuer_public = signing_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(spec.serial or x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=spec.days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), False
        )
    )
    for value, critical in spec.extensions:
        builder = builder.add_extension(value, critical)
    return builder.sign(signing_key, hashes.SHA256())


# -- files ------------------------------------------------------------------------


def _pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_file(path: Path, data: bytes, mode: int, *, replace: bool = False) -> None:
    """Put ``data`` at ``path`` with ``mode``, through a private temporary file: a reader
    never sees a half-written file. Without ``replace`` an existing file is kept, and of
    two concurrent writers the first wins (the second's hard link fails and it leaves the
    winner's file alone); with it, the new content replaces the old atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)  # os.open's mode passes through the umask
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


def _write_once(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` holding ``data`` unless it exists; never overwrite."""
    write_file(path, data, mode)


# -- command line -------------------------------------------------------------------


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$SIUI_DATA_DIR`` when set, else ``.siui`` (as in ``shared.config``)."""
    return Path(env.get("SIUI_DATA_DIR", "").strip() or ".siui")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.devpki",
        description="Create the development PKI and secrets (only what is missing).",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where to write (default: $SIUI_DATA_DIR, else .siui)"
    )
    args = parser.parse_args(argv)
    try:
        paths = ensure_dev_pki(args.data_dir or default_data_dir())
    except FileExistsError as exc:
        print(f"devpki: {exc}", file=sys.stderr)
        return 1
    for field in fields(paths):
        print(f"{field.name}={getattr(paths, field.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
