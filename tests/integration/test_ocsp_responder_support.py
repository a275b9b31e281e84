"""What the responder tests share (no tests here): the real ocsp app on the session's
PostgreSQL and RabbitMQ, a CA of their own made with ``cryptography`` (so no other test's
issuer gets in the way), state fed exactly as certs publishes it, and OCSP requests."""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder.registry import issuer_hashes
from services.ocsp.responder import REGISTRY
from shared.broker import connect
from shared.events import (
    CertificateRegistered, CertificateReinstated, CertificateRevoked, CertificateSuspended, EventData,
    IssuerRegistered, new_envelope,
)
from tests.support import infra
from tests.support.wait import eventually

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}
_serials = itertools.count(0x5000_0000_0000_0000_0000_0001)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class TestCa:
    """A CA of this test run, registered as an issuer, issuing leaves and responders."""

    __test__ = False
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    issuer_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def create(cls, cn: str) -> "TestCa":
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, cn: str, *, serial: int | None = None, ocsp_url: str | None = None,
              ocsp_signing: bool = False, key=None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(serial or next(_serials))
                   .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False))
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), False)
        if ocsp_signing:
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
                       .add_extension(x509.OCSPNoCheck(), False))
        return builder.sign(self.key, hashes.SHA256()), key


def request_der(ca: "TestCa", *items, algorithm=hashes.SHA1(), nonce: bytes | None = None) -> bytes:
    """An OCSP request with one CertID per item: a certificate or serial of ``ca``, or a
    ``(other_ca, serial)`` pair. Built with asn1crypto: cryptography allows one CertID only."""
    entries = []
    for item in items:
        issuer, serial = item if isinstance(item, tuple) else (ca, item)
        serial = serial if isinstance(serial, int) else serial.serial_number
        name_hash, key_hash = issuer_hashes(issuer.cert.public_bytes(serialization.Encoding.DER))[algorithm.name]
        entries.append({"req_cert": {"hash_algorithm": {"algorithm": algorithm.name}, "issuer_name_hash": name_hash,
                                     "issuer_key_hash": key_hash, "serial_number": serial}})
    tbs = {"request_list": entries}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


class Feed:
    """Publishes certs' events on the session's real exchange, as siui-certs."""

    def __init__(self, broker):
        self.broker = broker

    async def publish(self, event: EventData, cas: str = "B") -> None:
        await self.broker.publish(new_envelope(event, cas))

    async def issuer(self, ca: TestCa) -> None:
        await self.publish(IssuerRegistered(issuer_id=ca.issuer_id, subject_dn=ca.cert.subject.rfc4514_string(),
                                            certificate_pem=ca.pem), "CNAS")

    async def certificate(self, ca: TestCa, serial: int, *, status: str = "active", changed_at: datetime | None = None,
                          certificate_id: str | None = None, reason: str | None = None, cas: str = "B",
                          event=None) -> str:
        certificate_id = certificate_id or str(uuid.uuid4())
        event = event or {"active": CertificateRegistered, "suspended": CertificateSuspended,
                          "revoked": CertificateRevoked}[status]
        await self.publish(event(certificate_id=certificate_id, issuer_id=ca.issuer_id, serial=str(serial),
                                 username=f"12433636_CAS-{cas}", provider_cui="12433636", status=status,
                                 changed_at=(changed_at or datetime.now(timezone.utc)).isoformat(),
                                 reason=reason), cas)
        return certificate_id

    async def reinstate(self, ca: TestCa, serial: int, certificate_id: str, changed_at: datetime | None = None):
        await self.certificate(ca, serial, certificate_id=certificate_id, changed_at=changed_at,
                               event=CertificateReinstated)


@pytest.fixture
async def feed(common_config):
    broker = await connect(infra.amqp_url_for("certs"), common_config.events_exchange)
    yield Feed(broker)
    await broker.close()


@pytest.fixture
def ocsp_config(common_config) -> Config:
    return Config(common=common_config, port=0, tls_port=0, workers=1)


@pytest.fixture
async def client(aiohttp_client, ocsp_config):
    return await aiohttp_client(create_app(ocsp_config))


async def registered(client, ca: TestCa, serial: int | None = None, *, status: str = "good") -> None:
    """Wait until the app's registry knows the issuer (and the serial, in ``status``)."""
    registry = client.app[REGISTRY]

    async def known():
        if registry.issuer(ca.issuer_id) is None:
            return False
        if serial is None:
            return True
        record = registry.certificate(ca.issuer_id, serial)
        if record is None:
            return False
        return {"good": not record.suspended and record.status == "good",
                "suspended": record.suspended, "revoked": record.status == "revoked"}[status]

    await eventually(known, what=f"issuer {ca.issuer_id} / serial {serial} in the registry as {status}")


async def post(client, der: bytes) -> ocsp.OCSPResponse:
    response = await client.post("/", data=der, headers=OCSP_REQUEST)
    assert response.status == 200
    assert response.content_type == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(await response.read())


async def raw_get(client, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (clients would normalise '//'); (status, body)."""
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {client.host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
