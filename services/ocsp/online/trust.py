"""The :8443 TLS context: our server certificate, client certificates optional (a
missing one is answered in HTTP, with a reason), trusted when issued by a registered
issuer, and the issuer that signed a presented certificate found again.

Session resumption (TLS 1.3 tickets) makes a desktop's reconnect cheap. A resumed
session carries the client certificate of the full handshake that opened it (OpenSSL
keeps the peer certificate in the ticket, and ``getpeercert`` returns it on the resumed
connection: tests/integration/ocsp/test_ocsp_online_storm.py holds it to that), so
every connect still judges that certificate, from the registry, as on a first
connect: a suspension or revocation since is seen at once. A ticket is usable only with
the resumption secret of the client that completed the full handshake; another
certificate loaded by a client that replays it is never what the server sees. Tickets
are encrypted with a key derived from the data key and the UTC day
(``shared.http.tickets``), so every worker, and a restarted one, accepts them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ssl
import time
from collections import OrderedDict

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from services.ocsp.online.rules import ClientCert
from services.ocsp.responder.registry import Registry
from shared.holders import holder_of
from shared.http.tickets import set_ticket_keys, ticket_key
from shared.logging import get_logger

log = get_logger(__name__)


class TrustStore:
    """The :8443 TLS context: our server certificate, client certificates optional (a
    missing one is answered in HTTP), trusted when issued by a registered issuer."""

    #: A ticket key serves one UTC day; a ticket of the day before costs one full handshake.
    TICKET_PERIOD = 86400
    #: Presented certificates remembered with their issuer (~0.5 kB each): a desktop's
    #: reconnects and heartbeats skip parsing and the signature check.
    INSPECTED = 20_000

    def __init__(self, registry: Registry, cert_path, key_path, *, ticket_secret: bytes | None = None,
                 now=time.time) -> None:
        self.registry = registry
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        context.verify_mode = ssl.CERT_OPTIONAL
        # X509_V_FLAG_NO_CHECK_TIME: validity is judged in evaluate(), with a clear reason.
        # PARTIAL_CHAIN: a registered issuer is an anchor even when it is an intermediate CA.
        context.verify_flags |= 0x200000 | ssl.VERIFY_X509_PARTIAL_CHAIN
        # Called at every handshake, before the client certificate is verified (also
        # without SNI): an issuer registered a moment ago is trusted at once.
        context.sni_callback = self._on_hello
        # One ticket per handshake: a desktop resumes from the latest it holds, a second
        # would only cost an encryption and bytes on every connect.
        context.num_tickets = 1
        self.context = context
        self._ticket_secret, self._now = ticket_secret, now
        self._ticket_period: int | None = None
        self.shared_tickets = False
        self._rotate_tickets()
        self._seen = None
        self._loaded: set[bytes] = set()
        self._by_subject: dict[bytes, list[tuple[str, x509.Certificate]]] = {}
        self._inspected: OrderedDict[bytes, ClientCert] = OrderedDict()

    def refresh(self) -> bool:
        """Trust issuers registered since the last call; True if anything changed. CAs
        are added to the live context (new handshakes see them at once); an issuer that
        is removed stays in the TLS store until restart, but its certificates no longer
        resolve, so connects answer certificate_not_registered."""
        version = self.registry.issuers_version
        if version == self._seen:
            return False
        by_subject: dict[bytes, list[tuple[str, x509.Certificate]]] = {}
        for issuer in self.registry.issuers():
            if not issuer.certificate_der:
                continue
            certificate = x509.load_der_x509_certificate(issuer.certificate_der)
            by_subject.setdefault(certificate.subject.public_bytes(), []).append(
                (issuer.issuer_id, certificate))
            if issuer.certificate_der not in self._loaded:
                self.context.load_verify_locations(cadata=issuer.certificate_der)
                self._loaded.add(issuer.certificate_der)
        self._by_subject, self._seen = by_subject, version
        self._inspected.clear()  # an issuer added or gone changes whose certificate is whose
        return True

    def _rotate_tickets(self) -> None:
        if self._ticket_secret is None:
            return
        period = int(self._now() // self.TICKET_PERIOD)
        if period != self._ticket_period:
            self._ticket_period = period
            self.shared_tickets = set_ticket_keys(self.context, ticket_key(self._ticket_secret, period))

    def _on_hello(self, _ssl_object, _server_name, _context) -> None:
        try:
            self._rotate_tickets()
            self.refresh()
        except Exception as exc:  # never fail a handshake over it: the last store stands
            log.warning("online_trust_refresh_failed", error=repr(exc))

    def inspect(self, der: bytes) -> ClientCert:
        """The presented certificate, with the registered issuer that signed it (from a
        bounded memory of the last ones seen, while the issuers stay the same)."""
        digest = hashlib.sha256(der).digest()
        known = self._inspected.get(digest)
        if known is not None:
            self._inspected.move_to_end(digest)
            return known
        inspected = self._inspect(der, digest.hex())
        self._inspected[digest] = inspected
        if len(self._inspected) > self.INSPECTED:
            self._inspected.popitem(last=False)
        return inspected

    def _inspect(self, der: bytes, fingerprint: str) -> ClientCert:
        certificate = x509.load_der_x509_certificate(der)
        issuer_id = None
        for candidate_id, candidate in self._by_subject.get(certificate.issuer.public_bytes(), ()):
            try:
                certificate.verify_directly_issued_by(candidate)
            except (InvalidSignature, ValueError, TypeError):  # not this namesake's signature
                continue
            issuer_id = candidate_id
            break
        return ClientCert(certificate.serial_number, certificate.not_valid_before_utc,
                          certificate.not_valid_after_utc, issuer_id, fingerprint, der=der)


def identified(cert: ClientCert) -> ClientCert:
    """The certificate with its holder and PEM (issue 15): read only for one that is not
    registered, from a registered issuer, since only such a one can be a renewal; a
    registered certificate's connect (the reconnect storm) reads nothing more."""
    if cert.issuer_id is None or cert.holder is not None or not cert.der:
        return cert
    certificate = x509.load_der_x509_certificate(cert.der)
    return dataclasses.replace(cert, holder=holder_of(certificate.subject),
                               pem=certificate.public_bytes(serialization.Encoding.PEM).decode())
