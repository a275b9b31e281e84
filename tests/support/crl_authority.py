"""A test CA that publishes its CRL over HTTP, as a qualified CA does: revoke a serial at
the CA and the next download lists it. The CRL is made and signed by ``cryptography``
with the CA's own key; the server is a real aiohttp server on loopback, counting its
downloads, and can be told to serve a forged, oversized or broken answer instead."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from shared.clock import utc_now
from tests.support.pki import Issued, new_key, root_ca


@dataclass
class CrlAuthority:
    """The CA's revocations and what its CRL endpoint serves (``mode``)."""

    authority: Issued
    revoked: dict[int, tuple[datetime, x509.ReasonFlags | None]] = field(default_factory=dict)
    next_update_in: timedelta = timedelta(hours=24)
    mode: str = "crl"  # crl | forged | huge | broken | missing
    downloads: int = 0
    url: str = ""

    def revoke(self, serial: int, reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
               at: datetime | None = None) -> datetime:
        """Revoke at the CA; the revocation time (whole seconds, as a CRL carries it)."""
        moment = (at or utc_now() - timedelta(minutes=5)).replace(microsecond=0)
        self.revoked[serial] = (moment, reason)
        return moment

    def crl_der(self, *, signing_key=None, this_update: datetime | None = None) -> bytes:
        now = (this_update or utc_now()).replace(microsecond=0)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.authority.cert.subject)
                   .last_update(now - timedelta(minutes=1)).next_update(now + self.next_update_in)
                   .add_extension(x509.CRLNumber(len(self.revoked) + 1), critical=False))
        for serial, (moment, reason) in self.revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(moment)
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(signing_key or self.authority.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.downloads += 1
        if self.mode == "missing":
            raise web.HTTPNotFound()
        if self.mode == "broken":
            return web.Response(body=b"this is not a CRL", content_type="application/pkix-crl")
        if self.mode == "huge":
            return web.Response(body=b"\x30" * (3 * 1024 * 1024), content_type="application/pkix-crl")
        key = new_key() if self.mode == "forged" else None
        return web.Response(body=self.crl_der(signing_key=key), content_type="application/pkix-crl")

    @contextlib.asynccontextmanager
    async def served(self) -> AsyncIterator["CrlAuthority"]:
        """Serve ``/ca.crl`` on loopback while the context lasts (``url`` set)."""
        app = web.Application()
        app.router.add_get("/ca.crl", self._serve)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.url = str(server.make_url("/ca.crl"))
        try:
            yield self
        finally:
            await server.close()

    @classmethod
    def new(cls, cn: str) -> "CrlAuthority":
        return cls(root_ca(cn, now=utc_now()))
