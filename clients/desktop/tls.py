"""The TLS side of *Conectare online*: the provider's certificate and key (PEM files or a
PKCS#12 bundle, with a passphrase asked for when needed) and which server to trust.

Both forms are read with ``cryptography`` first, so that a wrong passphrase or a key that
does not belong to the certificate is told apart from a network problem. The ``ssl``
module loads client credentials only from files: they are written to a private
temporary directory with the key encrypted under a random one-time password, loaded,
and removed at once, so the key never lies on disk in clear.
"""
from __future__ import annotations

import os
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSPHRASE_ATTEMPTS = 3
# A certificate with its chain, a key or a PKCS#12 bundle is a few KiB; a larger file
# was picked by mistake and is not read whole.
MAX_FILE_BYTES = 256 * 1024
MAX_PASSPHRASE = 1024

# ask(file, retry) -> passphrase; ``retry`` is True after a wrong one.
AskPassphrase = Callable[[str, bool], str]


class CredentialsError(Exception):
    """The certificate or key cannot be used; ``key``/``params`` name the message."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Credentials:
    """A client certificate, its key, and any intermediate certificates to send along."""

    certificate: x509.Certificate
    key: object
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def subject(self) -> str:
        """``12433636 (SC DEMO MEDICAL SRL)``: the common name and organisation."""
        return _display(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return _display(self.certificate.issuer)

    @property
    def not_after(self) -> str:
        return self.certificate.not_valid_after_utc.date().isoformat()


def default_ca(env: Mapping[str, str] | None = None) -> Path | None:
    """The dev set-up's root, ``<SIUI_DATA_DIR or .siui>/pki/root-ca.pem``, when it exists;
    else None (the system's trust store is used)."""
    env = os.environ if env is None else env
    path = Path(env.get("SIUI_DATA_DIR", "").strip() or ".siui") / "pki" / "root-ca.pem"
    return path if path.is_file() else None


def load_pem(cert_path: Path, key_path: Path, ask: AskPassphrase) -> Credentials:
    """Certificate (the first in the file; the rest are sent as the chain) and key."""
    certificates = _read_certificates(cert_path)
    data = _read(key_path)
    key = _with_passphrase(str(key_path), ask,
                           lambda pw: serialization.load_pem_private_key(data, pw))
    return _matched(Credentials(certificates[0], key, tuple(certificates[1:])))


def load_p12(p12_path: Path, ask: AskPassphrase) -> Credentials:
    """Key, certificate and chain from a PKCS#12 bundle."""
    data = _read(p12_path)
    key, certificate, chain = _with_passphrase(
        str(p12_path), ask, lambda pw: pkcs12.load_key_and_certificates(data, pw))
    if key is None or certificate is None:
        raise CredentialsError("credentials_unusable",
                               detail=f"{p12_path}: no certificate with its key in the bundle")
    return _matched(Credentials(certificate, key, tuple(chain or ())))


def client_context(credentials: Credentials, ca: Path | None) -> ssl.SSLContext:
    """A TLS 1.2+ client context that verifies the server (``ca``, else the system
    store) and presents ``credentials``."""
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as exc:
        raise CredentialsError("credentials_unusable", detail=f"--ca {ca}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = secrets.token_urlsafe(24)
    directory = tempfile.mkdtemp(prefix="siui-desktop-")  # 0700
    try:
        cert_file = Path(directory) / "cert.pem"
        key_file = Path(directory) / "key.pem"
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                       for c in (credentials.certificate, *credentials.chain))
        cert_file.write_bytes(pem)
        key_file.write_bytes(credentials.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode())))
        context.load_cert_chain(cert_file, key_file, password=password)
    except ssl.SSLError as exc:
        raise CredentialsError("credentials_unusable", detail=str(exc)) from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return context


def _with_passphrase(name: str, ask: AskPassphrase, load: Callable[[bytes | None], object]):
    """``load`` without a passphrase, then with what ``ask`` returns, a few times."""
    try:
        return load(None)
    except TypeError:
        pass  # encrypted: a passphrase is needed
    except ValueError as exc:
        if not _maybe_encrypted(exc):
            raise CredentialsError("credentials_unusable", detail=f"{name}: {exc}") from None
    for attempt in range(PASSPHRASE_ATTEMPTS):
        passphrase = ask(name, attempt > 0)[:MAX_PASSPHRASE]
        try:
            return load(passphrase.encode())
        except (ValueError, TypeError):
            continue
    raise CredentialsError("passphrase_wrong", file=name)


def _maybe_encrypted(exc: ValueError) -> bool:
    # PKCS#12 without a passphrase fails with a ValueError ("Invalid password or
    # PKCS12 data"); anything else is a file we cannot read at all.
    text = str(exc).lower()
    return "password" in text or "decrypt" in text


def _matched(credentials: Credentials) -> Credentials:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = credentials.key.public_key().public_bytes(serialization.Encoding.DER, public)
    theirs = credentials.certificate.public_key().public_bytes(serialization.Encoding.DER, public)
    if ours != theirs:
        raise CredentialsError("credentials_unusable",
                               detail="the key does not belong to the certificate")
    return credentials


def _display(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common:
        return name.rfc4514_string()
    organisation = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    shown = str(common[0].value)
    return f"{shown} ({organisation[0].value})" if organisation else shown


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CredentialsError("credentials_unusable", detail=f"{path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CredentialsError("credentials_unusable",
                               detail=f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB, "
                                      "not a certificate or key file")
    return data


def _read_certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CredentialsError("credentials_unusable",
                                   detail=f"{path}: not a PEM or DER certificate") from None
