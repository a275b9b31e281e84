"""The ocsp service as its integration tests drive it: issuers and certificate states fed
exactly as certs publishes them, waits for the app's registry to show them, OCSP requests
and answers, and the two edges the app is served through (see ``serve``)."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from yarl import URL

from services.ocsp.responder import REGISTRY
from services.ocsp.responder.front import FrontSite
from services.ocsp.responder.registry import issuer_hashes
from shared.clock import utc_now
from shared.db import POOL
from shared.events import (
    CertificateRegistered, CertificateReinstated, CertificateRevoked, CertificateSuspended, Envelope, EventData,
    IssuerRegistered,
)
from tests.support import bus, infra, pki
from tests.support.pki import Issued
from tests.support.wait import eventually

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}
EDGES = ("aiohttp", "front")  # see ``serve``
_EVENTS = {"active": CertificateRegistered, "suspended": CertificateSuspended, "revoked": CertificateRevoked}


@dataclass
class Issuer:
    """A test CA as the ocsp service knows it: the authority, and the id certs gave it."""

    authority: Issued
    issuer_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def new(cls, cn: str, *, parent: Issued | None = None) -> "Issuer":
        """A fresh self-signed CA, or one under ``parent`` (an intermediate)."""
        subject = pki.name(cn)
        now = utc_now()
        return cls(pki.sub_ca(parent, subject, now=now) if parent else pki.root_ca(subject, now=now))

    @property
    def cert(self):
        return self.authority.cert

    @property
    def pem(self) -> str:
        return self.authority.pem

    def issue(self, cn: str, **kw) -> Issued:
        """A provider's certificate of this CA, valid now unless told otherwise."""
        return pki.client(self.authority, cn, now=utc_now(), **kw)

    def delegate(self, cn: str, **kw) -> Issued:
        """This CA's delegated OCSP signer."""
        return pki.ocsp_signer(self.authority, cn, now=utc_now(), **kw)


class Feed:
    """Publishes on the session's exchange what certs publishes: issuers and certificate
    states; ``published`` keeps every envelope sent, in order."""

    def __init__(self, publishers: infra.Publishers):
        self.publishers = publishers
        self.published: list[Envelope] = []

    async def publish(self, event: EventData, cas: str = "B", **envelope_fields) -> Envelope:
        envelope = await bus.publish(self.publishers, event, cas, **envelope_fields)
        self.published.append(envelope)
        return envelope

    async def issuer(self, issuer: Issuer) -> None:
        await self.publish(IssuerRegistered(issuer_id=issuer.issuer_id, subject_dn=issuer.cert.subject.rfc4514_string(),
                                            certificate_pem=issuer.pem), "CNAS")

    async def certificate(self, issuer: Issuer, certificate: int | Issued, *, status: str = "active",
                          changed_at: datetime | None = None, certificate_id: str | None = None,
                          reason: str | None = None, username: str = "12433636_CAS-B", event=None) -> str:
        """A certificate's state (registered, suspended, revoked, or ``event``) for
        ``username``'s house; given as an Issued, with its PEM and dates as certs sends
        them. Returns the certificate id."""
        certificate_id = certificate_id or str(uuid.uuid4())
        cui, _, cas = username.partition("_CAS-")
        fields = {}
        if isinstance(certificate, Issued):
            fields = {"not_before": certificate.cert.not_valid_before_utc.isoformat(),
                      "not_after": certificate.cert.not_valid_after_utc.isoformat(),
                      "certificate_pem": certificate.pem}
            certificate = certificate.serial
        await self.publish((event or _EVENTS[status])(
            certificate_id=certificate_id, issuer_id=issuer.issuer_id, serial=str(certificate), username=username,
            provider_cui=cui, status=status, changed_at=(changed_at or utc_now()).isoformat(), reason=reason,
            **fields), cas)
        return certificate_id

    async def reinstate(self, issuer: Issuer, certificate: int | Issued, certificate_id: str,
                        changed_at: datetime | None = None, **kw) -> None:
        await self.certificate(issuer, certificate, certificate_id=certificate_id, changed_at=changed_at,
                               event=CertificateReinstated, **kw)


async def committed(app: web.Application, envelopes: list[Envelope]) -> None:
    """Wait until the app's service has committed each of these events: a consumer writes
    an event's inbox row in the same transaction as its effect."""
    ids = [uuid.UUID(envelope.id) for envelope in envelopes]

    async def all_in():
        return await app[POOL].fetchval("select count(*) = $2 from inbox where event_id = any($1::uuid[])",
                                        ids, len(ids))

    await eventually(all_in, what=f"{len(ids)} events committed")


async def registered(app: web.Application, issuer: Issuer, serial: int | None = None, *,
                     status: str = "good") -> None:
    """Wait until the app's registry knows the issuer (and the serial, in ``status``:
    good, suspended or revoked)."""
    registry = app[REGISTRY]

    async def known():
        if registry.issuer(issuer.issuer_id) is None:
            return False
        if serial is None:
            return True
        record = registry.certificate(issuer.issuer_id, serial)
        if record is None:
            return False
        return {"good": not record.suspended and record.status == "good",
                "suspended": record.suspended, "revoked": record.status == "revoked"}[status]

    await eventually(known, what=f"issuer {issuer.issuer_id} / serial {serial} in the registry as {status}")


def request_der(issuer: Issuer, *items, algorithm=hashes.SHA1(), nonce: bytes | None = None) -> bytes:
    """An OCSP request with one CertID per item: a certificate (Issued) or serial of
    ``issuer``, or an ``(other_issuer, certificate or serial)`` pair. Built with
    asn1crypto: cryptography allows one CertID only."""
    entries = []
    for item in items:
        of, serial = item if isinstance(item, tuple) else (issuer, item)
        serial = serial if isinstance(serial, int) else serial.serial
        name_hash, key_hash = issuer_hashes(of.authority.der)[algorithm.name]
        entries.append({"req_cert": {"hash_algorithm": {"algorithm": algorithm.name}, "issuer_name_hash": name_hash,
                                     "issuer_key_hash": key_hash, "serial_number": serial}})
    tbs = {"request_list": entries}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


async def ask(client: TestClient, der: bytes) -> ocsp.OCSPResponse:
    """POST an OCSP request; the answer, which must be a 200 application/ocsp-response."""
    response = await client.post("/", data=der, headers=OCSP_REQUEST)
    assert response.status == 200
    assert response.content_type == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(await response.read())


async def raw_get(client: TestClient, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (clients would normalise '//'); (status, body)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {client.host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class FrontServer(TestServer):
    """The app behind ``FrontSite`` on a real socket, as ``services/ocsp/__main__.py``
    serves :8104: the front answers OCSP itself and hands anything else to the app's
    runner (set up as production sets it up), which has no site of its own."""

    async def start_server(self, **kwargs) -> None:
        if self.runner:
            return
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=5)
        await self.runner.setup()
        self.site = FrontSite(self.runner, self.host, 0)
        await self.site.start()
        self.port = self.site.port
        self.scheme = "http"
        self._root = URL(f"http://{self.host}:{self.port}")

    async def close(self) -> None:
        if self.started and not self.closed:
            await self.site.stop(5)
        await super().close()


def serve(edge: str, app: web.Application) -> TestClient:
    """A client of ``app`` served through ``edge``: "aiohttp" (its test server, a plain
    site) or "front" (``FrontServer``, as in production). Start it with ``async with``."""
    server = {"aiohttp": TestServer, "front": FrontServer}[edge](app)
    return TestClient(server)
