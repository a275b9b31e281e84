"""What the OCSP log and online-channel tests share (no tests here): the real ocsp app on
the session's PostgreSQL and RabbitMQ with its :8443 site, a small CA made with
``cryptography``, state fed as certs, keygen and users publish it, and a TLS client that
presents a provider certificate."""
from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.online import KEYS
from services.ocsp.online import ONLINE
from services.ocsp.responder import REGISTRY
from shared.license import load_pepper
from shared.events import (
    CertificateRegistered, EventData, IssuerRegistered, new_envelope,
)
from tests.support import infra
from tests.support.wait import eventually

from services.keygen import keys as keygen_keys

NOW = datetime.now(timezone.utc)


@dataclass
class Ca:
    """A CA this test registers as an issuer, and that signs provider certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    issuer_id: str = ""

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Provider:
    """A provider certificate with its key on disk (what the desktop holds)."""

    cert: x509.Certificate
    cert_path: Path
    key_path: Path

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(name: str, parent: Ca | None = None) -> Ca:
    """A self-signed CA, or an intermediate that ``parent`` signs."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(parent.cert.subject if parent else subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(parent.key if parent else key, hashes.SHA256()))
    return Ca(cert, key)


def make_provider(ca: Ca, directory: Path, cui: str, *, not_before: datetime | None = None,
                  not_after: datetime | None = None) -> Provider:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, cui)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - timedelta(hours=1))
            .not_valid_after(not_after or NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca.key, hashes.SHA256()))
    name = uuid.uuid4().hex[:10]
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Provider(cert, cert_path, key_path)


def new_cui() -> str:
    return str(10_000_000 + uuid.uuid4().int % 89_999_999)


class Harness:
    """The running ocsp app (HTTP client for :8104 routes, a TLS client for :8443) and the bus."""

    def __init__(self, client: TestClient, publishers: infra.Publishers, pepper: bytes,
                 root_ca: Path, directory: Path):
        self.client, self.publishers, self.pepper = client, publishers, pepper
        self.root_ca, self.directory = root_ca, directory

    @property
    def app(self):
        return self.client.server.app

    @property
    def online_url(self) -> str:
        return f"https://127.0.0.1:{self.app[ONLINE].port}"

    async def publish(self, event: EventData, cas: str, *, occurred_at: datetime | None = None) -> None:
        envelope = new_envelope(event, cas)
        if occurred_at is not None:
            envelope = type(envelope)(**{**envelope.__dict__, "occurred_at": occurred_at.isoformat()})
        # As its publisher (certs, keygen, users) would: consumers refuse anyone else's.
        await self.publishers.publish(envelope)

    async def register_issuer(self, ca: Ca) -> Ca:
        ca.issuer_id = str(uuid.uuid4())
        await self.publish(IssuerRegistered(issuer_id=ca.issuer_id, subject_dn=ca.cert.subject.rfc4514_string(),
                                            certificate_pem=ca.pem), "CNAS")

        async def known():
            return self.app[REGISTRY].issuer(ca.issuer_id) is not None

        await eventually(known, what="issuer in the registry")
        return ca

    async def publish_certificate(self, ca: Ca, provider: Provider, username: str, *, status: str = "active",
                                  event=CertificateRegistered, certificate_id: str | None = None,
                                  changed_at: datetime | None = None) -> str:
        certificate_id = certificate_id or str(uuid.uuid4())
        cas = username.rpartition("_CAS-")[2]
        await self.publish(event(
            certificate_id=certificate_id, issuer_id=ca.issuer_id, serial=str(provider.serial),
            username=username, provider_cui=username.partition("_")[0], status=status,
            changed_at=(changed_at or datetime.now(timezone.utc)).isoformat(),
            not_before=provider.cert.not_valid_before_utc.isoformat(),
            not_after=provider.cert.not_valid_after_utc.isoformat(), certificate_pem=provider.pem), cas)
        return certificate_id

    async def wait_certificate(self, ca: Ca, provider: Provider, **expected) -> None:
        async def there():
            record = self.app[REGISTRY].certificate(ca.issuer_id, provider.serial)
            return record is not None and all(getattr(record, k) == v for k, v in expected.items())

        await eventually(there, what=f"certificate state {expected}")

    async def issue_key(self, username: str, *, reset: bool = False, issued_at: datetime | None = None,
                        wait: bool = True) -> str:
        """Publish KeyIssued exactly as keygen makes it (its own key and event code, its own
        reading of the pepper); returns the clear serial, as printed on the agreement."""
        cui, _, cas = username.partition("_CAS-")
        key = keygen_keys.new_key(self.pepper, issued_at or datetime.now(timezone.utc))
        provider = {"id": uuid.uuid4(), "cui": cui, "code": cui, "name": f"SC {cui} SRL", "cas": cas}
        event = keygen_keys.key_issued(provider, key, reset=reset, issued_by="operator.b")
        assert event.external_user == username
        await self.publish(event, cas)
        if wait:
            async def current():
                record = self.app[KEYS].get(username)
                return record is not None and record.key_digest == key.digest.hex()

            await eventually(current, what="key in memory")
        return key.serial

    def tls(self, provider: Provider | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.root_ca))
        if provider is not None:
            context.load_cert_chain(provider.cert_path, provider.key_path)
        return context

    async def online(self, path: str, provider: Provider | None, *, username: str | None = None,
                     serial: str | None = None, token: str | None = None, language: str | None = None):
        """POST to the online channel; returns (status, JSON body)."""
        headers = {"Accept-Language": language} if language else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if username is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(username, serial or "")
        async with aiohttp.ClientSession() as session:
            async with session.post(self.online_url + path, ssl=self.tls(provider),
                                    headers=headers) as response:
                return response.status, await response.json(content_type=None)

    async def connect(self, provider, username=None, serial=None, **kw):
        return await self.online("/v1/online/connect", provider, username=username, serial=serial, **kw)


@pytest.fixture(scope="module")
async def harness(common_config, pki, tmp_path_factory):
    """One ocsp app per test module (starting one costs about a second)."""
    config = Config(common=common_config, port=0, tls_port=0, workers=1)
    server = TestServer(create_app(config))
    client = TestClient(server)
    await client.start_server()
    publishers = infra.Publishers(common_config.events_exchange)
    yield Harness(client, publishers, load_pepper(pki.license_pepper), pki.root_ca_cert,
                  tmp_path_factory.mktemp("ocsp-online"))
    await publishers.close()
    await client.close()
