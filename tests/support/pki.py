"""The test PKI, declared once in the spirit of certomancer: named authorities and
certificates built on first use from a clock passed in, and the few small builders they
are made of, for tests that need a certificate of their own (a fresh serial, a CUI as
the CN, an odd validity). A test that builds a certificate builds it here. The dev PKI
(deploy/devpki.py) is production tooling: a test of a running stack issues what it needs
under the stack's demo issuer (``demo_issuer``). The certs service's tests have the
openssl CLI make theirs on purpose (tests/support/openssl_ca.py).

``TestPki(now)`` declares::

    root                 SIUI Test Root CA, EC P-256, self-signed
    issuing, issuing_rsa SIUI Test Issuing CA (EC P-256; RSA 2048), under root
    good, suspended, unknown, expired, not_yet_valid
                         provider (client) certificates of issuing; the first three are
                         valid at ``now`` and named for what a test makes of them (an OCSP
                         state is the registry's, not the certificate's)
    ocsp_signer          issuing's delegated responder (OCSPSigning EKU, ocsp-nocheck)
    responder, responder_rsa
                         a responder's own certificate, self-signed: trusted by name only
                         (openssl's -VAfile), never through a chain
    document_signer, document_signer_ec
                         the agreement's signers (RSA 2048; EC P-256), under root

``label`` gives a world of its own (other names, other keys): the ocsp service refuses
one CA under two issuer ids, so integration modules sharing a database each need theirs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
# notBefore an hour back (as deploy/devpki.py does): a peer whose clock lags still accepts.
BACKDATE = timedelta(hours=1)
ORGANIZATION = "SIUI Access test"


def new_key(kind: str = "ec") -> PrivateKey:
    """"ec" (P-256), "ec-p384", "ec-secp256k1", "rsa" (2048) or "ed25519"."""
    curves = {"ec": ec.SECP256R1, "ec-p384": ec.SECP384R1, "ec-secp256k1": ec.SECP256K1}
    if kind in curves:
        return ec.generate_private_key(curves[kind]())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


def name(common_name: str, *, organization: str | None = None, country: str | None = "RO") -> x509.Name:
    """C=RO[, O=organization], CN=common_name."""
    attributes = [(NameOID.COUNTRY_NAME, country), (NameOID.ORGANIZATION_NAME, organization),
                  (NameOID.COMMON_NAME, common_name)]
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes if value])


def private_key_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key; an authority is an Issued whose certificate is a CA."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return private_key_pem(self.key)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.pem`` and ``<stem>.key`` (0600) in ``directory``: (certificate, key) paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_text(self.pem)
        key_path.write_text(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> "Issued":
        """An authority kept in files (the dev PKI's demo issuer, which a running stack trusts)."""
        return cls(x509.load_pem_x509_certificate(Path(cert_path).read_bytes()),
                   serialization.load_pem_private_key(Path(key_path).read_bytes(), None))


def demo_issuer(dev_pki) -> Issued:
    """The dev PKI's demo issuing authority (MSANATATII CA): a running stack registers it,
    so certificates it issues are the ones e2e tests can present."""
    return Issued.load(dev_pki.demo_issuer_cert, dev_pki.demo_issuer_key)


def key_usage(**bits: bool) -> x509.KeyUsage:
    """A KeyUsage with the named bits set (``digital_signature=True``, ...), the rest clear."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    unknown = set(bits) - set(names)
    if unknown:
        raise ValueError(f"unknown key usage bits {sorted(unknown)}")
    return x509.KeyUsage(**{bit: bits.get(bit, False) for bit in names})


CA_USAGE = key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)
SIGNING_USAGE = key_usage(digital_signature=True)
DOCUMENT_USAGE = key_usage(digital_signature=True, content_commitment=True)


def certificate(subject: str | x509.Name, *, now: datetime, issuer: Issued | None = None,
                key: PrivateKey | None = None, serial: int | None = None, days: int = 365,
                not_before: datetime | None = None, not_after: datetime | None = None,
                ca: bool = False, path_length: int | None = None, usage: x509.KeyUsage | None = None,
                eku: tuple[x509.ObjectIdentifier, ...] = (), ocsp_url: str | None = None,
                ocsp_nocheck: bool = False, crl_url: str | None = None) -> Issued:
    """The one builder: ``issuer`` None is self-signed; validity from ``now`` (an hour
    back, ``days`` on) unless given; a random serial unless given; SKI and AKI always."""
    key = key or new_key()
    subject = name(subject) if isinstance(subject, str) else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(not_before or now - BACKDATE).not_valid_after(not_after or now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(usage or (CA_USAGE if ca else SIGNING_USAGE), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
    # Ed25519 signs the message itself: no separate digest.
    digest = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(builder.sign(signing_key, digest), key)


def root_ca(subject: str | x509.Name, *, now: datetime, days: int = 3650, **kw) -> Issued:
    """A self-signed CA (keyCertSign, cRLSign)."""
    return certificate(subject, now=now, days=days, ca=True, **kw)


def sub_ca(parent: Issued, subject: str | x509.Name, *, now: datetime, days: int = 1825, **kw) -> Issued:
    """A CA that ``parent`` signs (an issuing authority under a root)."""
    return certificate(subject, now=now, issuer=parent, days=days, ca=True, **kw)


def client(issuer: Issued, subject: str | x509.Name, *, now: datetime, **kw) -> Issued:
    """A provider's certificate (clientAuth), as the online channel and OCSP clients see them."""
    return certificate(subject, now=now, issuer=issuer, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), **kw)


def ocsp_signer(issuer: Issued | None, subject: str | x509.Name, *, now: datetime, **kw) -> Issued:
    """A delegated OCSP responder of ``issuer`` (RFC 6960 §4.2.2.2: OCSPSigning, ocsp-nocheck)."""
    return certificate(subject, now=now, issuer=issuer, eku=(ExtendedKeyUsageOID.OCSP_SIGNING,),
                       ocsp_nocheck=True, **kw)


def document_signer(issuer: Issued, subject: str | x509.Name, *, now: datetime, **kw) -> Issued:
    """A document signing certificate (digitalSignature, nonRepudiation), like the agreement's."""
    return certificate(subject, now=now, issuer=issuer, usage=DOCUMENT_USAGE, **kw)


class TestPki:
    """The declared test PKI at ``now`` (see the module's docstring); each named
    certificate is made on first use and kept. ``TestPki.at`` shares one per clock."""

    __test__ = False  # a name pytest would otherwise try to collect
    NAMES = ("root", "issuing", "issuing_rsa", "good", "suspended", "unknown", "expired", "not_yet_valid",
             "ocsp_signer", "responder", "responder_rsa", "document_signer", "document_signer_ec")

    def __init__(self, now: datetime, label: str = ""):
        self.now, self.label = now, label

    @classmethod
    def at(cls, now: datetime, label: str = "") -> "TestPki":
        """The one PKI of this clock and label in this process (made once, then shared)."""
        return _shared(cls, now, label)

    @classmethod
    def current(cls) -> "TestPki":
        """The process's PKI valid now (at the first call's second): for tests whose tools
        judge validity by the real clock (openssl, pdfsig, TLS, the signer checks)."""
        return _shared(cls, _first_call(), "")

    def name(self, common_name: str) -> x509.Name:
        return name(f"{common_name} {self.label}".strip(), organization=ORGANIZATION)

    @cached_property
    def root(self) -> Issued:
        return root_ca(self.name("SIUI Test Root CA"), now=self.now)

    @cached_property
    def issuing(self) -> Issued:
        return sub_ca(self.root, self.name("SIUI Test Issuing CA"), now=self.now)

    @cached_property
    def issuing_rsa(self) -> Issued:
        return sub_ca(self.root, self.name("SIUI Test Issuing CA RSA"), now=self.now, key=new_key("rsa"))

    @cached_property
    def good(self) -> Issued:
        return client(self.issuing, self.name("good provider"), now=self.now)

    @cached_property
    def suspended(self) -> Issued:
        return client(self.issuing, self.name("suspended provider"), now=self.now)

    @cached_property
    def unknown(self) -> Issued:
        return client(self.issuing, self.name("unregistered provider"), now=self.now)

    @cached_property
    def expired(self) -> Issued:
        return client(self.issuing, self.name("expired provider"), now=self.now,
                      not_before=self.now - timedelta(days=400), not_after=self.now - timedelta(days=35))

    @cached_property
    def not_yet_valid(self) -> Issued:
        return client(self.issuing, self.name("future provider"), now=self.now,
                      not_before=self.now + timedelta(days=2), not_after=self.now + timedelta(days=365))

    @cached_property
    def ocsp_signer(self) -> Issued:
        return ocsp_signer(self.issuing, self.name("SIUI Test Issuing CA OCSP Signer"), now=self.now)

    @cached_property
    def responder(self) -> Issued:
        return ocsp_signer(None, self.name("SIUI Test Responder"), now=self.now)

    @cached_property
    def responder_rsa(self) -> Issued:
        return ocsp_signer(None, self.name("SIUI Test Responder RSA"), now=self.now, key=new_key("rsa"))

    @cached_property
    def document_signer(self) -> Issued:
        return document_signer(self.root, self.name("CAS Gorj - semnare convenții"), now=self.now,
                               key=new_key("rsa"))

    @cached_property
    def document_signer_ec(self) -> Issued:
        return document_signer(self.root, self.name("CAS HR semnare"), now=self.now)

    def write(self, directory: Path, *names: str) -> dict[str, Path]:
        """The named certificates (all by default) as ``<name>.pem`` with ``<name>.key``
        beside them; returns the certificates' paths by name."""
        unknown = set(names) - set(self.NAMES)
        if unknown:
            raise ValueError(f"not declared: {sorted(unknown)}")
        return {n: getattr(self, n).write(directory, n)[0] for n in names or self.NAMES}


@functools.cache
def _first_call() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@functools.cache
def _shared(cls: type[TestPki], now: datetime, label: str) -> TestPki:
    return cls(now, label)
