"""The providers' online channel ("Conectare online") on :8443: mutual TLS plus HTTP Basic
``<CUI>_CAS-<cas>:<licence serial>``.

``POST /v1/online/connect`` answers ``{"semaphore": "online", "session_token", ...}`` only
when the presented certificate is registered to that external user, neither suspended nor
revoked, within its validity, and the serial is the user's current key; otherwise 401
problem+json with ``"semaphore": "offline"``, a ``reason`` code and a ``message`` a person
understands (Romanian; English with ``Accept-Language: en``). ``POST
/v1/online/heartbeat`` (Bearer session token, same certificate) checks it all again, so
the desktop notices a suspension or a key reset while online.

A connect reads only memory: certificates from the OCSP registry (state.py), keys from
``keys.KeyStore``; the log and the usage summary are buffers. keygen is never called.
The TLS trust store holds the registered issuers and grows as issuers are added; the
certificate's own validity is checked here, not by TLS, so that an expired certificate
gets a clear 401 rather than a failed handshake.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import BasicAuth, web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from prometheus_client import Counter

from services.ocsp.key_consumers import KEY_HANDLERS
from services.ocsp.keys import (
    KEYS, SESSIONS, KeyStore, KeySync, SessionSigner, check_key, key_fingerprint,
    load_pepper, pepper_fingerprint,
)
from services.ocsp.online_rules import REASONS, ClientCert, Verdict, evaluate, message_for, pick_language
from services.ocsp.oplog import OPLOG, LogEntry
from services.ocsp.registry import CertificateRecord, Registry
from services.ocsp.state import REGISTRY
from services.ocsp.usage import USAGE, UsagePublisher, UsageTracker
from shared import errors
from shared.broker import BROKER
from shared.clock import Clock, utc_now
from shared.db import POOL
from shared.houses import is_house
from shared.http import OPENAPI, SERVICE_NAME, request_middleware
from shared.inbox import start_consumer
from shared.logging import get_logger

log = get_logger(__name__)

SESSION_TTL = timedelta(minutes=15)
HEARTBEAT_SECONDS = 60         # what the desktop is told; a session outlives many beats

# The dashboard's "conectari": one count per decision. Labels stay bounded: a house code
# (or ""), online|offline, a REASONS code (or "" when online), connect|heartbeat.
CONNECTS = Counter("siui_ocsp_online_connects_total", "Online channel decisions (connect or heartbeat)",
                   ["cas", "result", "reason", "operation"])


class TrustStore:
    """The :8443 TLS context: our server certificate, client certificates optional (a
    missing one is answered in HTTP), trusted when issued by a registered issuer."""

    def __init__(self, registry: Registry, cert_path, key_path) -> None:
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
        self.context = context
        self._seen = None
        self._loaded: set[bytes] = set()
        self._by_subject: dict[bytes, list[tuple[str, x509.Certificate]]] = {}

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
        return True

    def _on_hello(self, _ssl_object, _server_name, _context) -> None:
        try:
            self.refresh()
        except Exception as exc:  # never fail a handshake over it: the last store stands
            log.warning("online_trust_refresh_failed", error=repr(exc))

    def inspect(self, der: bytes) -> ClientCert:
        """The presented certificate, with the registered issuer that signed it."""
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
                          certificate.not_valid_after_utc, issuer_id, hashlib.sha256(der).hexdigest())


@dataclass
class Online:
    """What the :8443 handlers share (under ``ONLINE`` in both applications)."""

    trust: TrustStore
    pepper: bytes
    clock: Clock
    session_ttl: timedelta
    port: int = 0


ONLINE = web.AppKey("ocsp_online", Online)


def _presented(request: web.Request, trust: TrustStore) -> ClientCert | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return trust.inspect(der) if der else None


def _basic(request: web.Request) -> tuple[str | None, str | None]:
    try:
        auth = BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        return None, None
    return auth.login.strip() or None, auth.password


def _house(username: str | None) -> str | None:
    house = (username or "").rpartition("_CAS-")[2].upper()
    return house if house and is_house(house) else None


def _finish(request: web.Request, verdict: Verdict, *, username: str | None, cert: ClientCert | None,
            started: float, heartbeat: bool) -> web.Response:
    """Log the attempt, note the use, and answer (raising the 401 for a refusal)."""
    online = request.app[ONLINE]
    now = online.clock()
    record, key = verdict.record, verdict.key
    cas = record.cas if record else key.cas if key else _house(username)
    detail = verdict.reason or ("heartbeat" if heartbeat else None)
    if heartbeat and verdict.reason:
        detail = f"heartbeat:{verdict.reason}"
    CONNECTS.labels(cas or "", "online" if verdict.online else "offline", verdict.reason or "",
                    "heartbeat" if heartbeat else "connect").inc()
    request.app[OPLOG].record(LogEntry(
        at=now, operation="connect", status="online" if verdict.online else "offline",
        latency_ms=(time.perf_counter() - started) * 1000, client=request.remote, cas=cas,
        username=username, serial=str(cert.serial) if cert else None,
        issuer_id=cert.issuer_id if cert else None,
        certificate_id=record.certificate_id if record else None, detail=detail))
    language = pick_language(request.headers.get("Accept-Language"))
    values = {"username": username or "", "serial": format(cert.serial, "X") if cert else "",
              "date": cert.not_after.date().isoformat() if cert else ""}
    if verdict.reason == "certificate_not_yet_valid":
        values["date"] = cert.not_before.date().isoformat()
    if not verdict.online:
        message = message_for(verdict.reason, language, **values)
        raise errors.Unauthorized(message, semaphore="offline", reason=verdict.reason, message=message,
                                  challenge='Basic realm="SIUI online", charset="UTF-8"')
    request.app[USAGE].used(record.certificate_id, record.cas, now)
    expires = (now + online.session_ttl).replace(microsecond=0)  # what the token's exp says
    token = request.app[SESSIONS].sign({
        "v": 1, "u": username, "c": record.cas, "cid": record.certificate_id, "fp": cert.fingerprint,
        "kf": key_fingerprint(key), "exp": int(expires.timestamp())})
    return web.json_response({
        "semaphore": "online", "session_token": token, "expires_at": expires.isoformat(),
        "username": username, "cas": record.cas, "message": message_for("online", language, **values),
        "heartbeat_seconds": HEARTBEAT_SECONDS}, dumps=functools.partial(json.dumps, ensure_ascii=False))


def _lookup(request: web.Request, cert: ClientCert | None) -> CertificateRecord | None:
    if cert is None or cert.issuer_id is None:
        return None
    return request.app[REGISTRY].certificate(cert.issuer_id, cert.serial)


async def connect(request: web.Request) -> web.Response:
    """POST /v1/online/connect: mutual TLS + Basic; online or a reasoned 401."""
    started = time.perf_counter()
    online = request.app[ONLINE]
    online.trust.refresh()
    cert = _presented(request, online.trust)
    username, serial = _basic(request)
    key = request.app[KEYS].get(username) if username else None
    verdict_of_key = check_key(key, serial or "", online.pepper)
    verdict = evaluate(cert, username, key, _lookup(request, cert), verdict_of_key, online.clock())
    return _finish(request, verdict, username=username, cert=cert, started=started, heartbeat=False)


async def heartbeat(request: web.Request) -> web.Response:
    """POST /v1/online/heartbeat: Bearer session token + the same certificate; checks
    everything again and answers like connect (with a fresh token)."""
    started = time.perf_counter()
    online = request.app[ONLINE]
    online.trust.refresh()
    cert = _presented(request, online.trust)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    claims = (request.app[SESSIONS].verify(token, online.clock().timestamp())
              if scheme.lower() == "bearer" and token.strip() else "session_invalid")
    username = claims.get("u") if isinstance(claims, dict) else None
    if cert is None:
        verdict = Verdict("certificate_missing")
    elif isinstance(claims, str):
        verdict = Verdict(claims)
    elif claims.get("fp") != cert.fingerprint:  # a token is bound to its certificate
        verdict = Verdict("session_invalid")
    else:
        key = request.app[KEYS].get(username) if username else None
        current = key_fingerprint(key)
        key_verdict = "ok" if current is not None and current == claims.get("kf") else "key_replaced"
        verdict = evaluate(cert, username, key, _lookup(request, cert), key_verdict, online.clock())
    return _finish(request, verdict, username=username, cert=cert, started=started, heartbeat=True)


def online_app(parent: web.Application) -> web.Application:
    """The small application served on :8443; it shares the parent's resources."""
    app = web.Application(middlewares=[request_middleware], client_max_size=16 * 1024)
    app[SERVICE_NAME] = parent[SERVICE_NAME] if SERVICE_NAME in parent else "ocsp"
    for key in (POOL, REGISTRY, OPLOG, KEYS, USAGE, SESSIONS, ONLINE):
        app[key] = parent[key]
    app.router.add_post("/v1/online/connect", connect)
    app.router.add_post("/v1/online/heartbeat", heartbeat)
    return app


def online_ctx(config, *, clock: Clock = utc_now, session_ttl: timedelta = SESSION_TTL,
               usage_interval: float = 5.0):
    """cleanup_ctx: keys in memory (and the ``ocsp.keys`` consumer feeding them), the usage
    publisher, and the :8443 TLS site in its own runner. Append after ``oplog_ctx`` and
    after the registry is loaded; it stops before them, so its last entries are logged."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # Files first: a missing secret fails the start before anything runs.
        app[SESSIONS] = SessionSigner.from_data_key(config.common.data_key_path)
        pepper = load_pepper(config.common.data_dir / "secrets" / "license-pepper")
        trust = TrustStore(app[REGISTRY], config.tls_cert, config.tls_key)
        trust.refresh()
        app[ONLINE] = Online(trust, pepper, clock, session_ttl)
        pool = app[POOL]
        # Whatever started is stopped in reverse order, also when a later step fails.
        async with contextlib.AsyncExitStack() as started:
            app[KEYS] = KeyStore()
            sync = KeySync(pool, app[KEYS])
            await sync.start()
            started.push_async_callback(sync.stop)
            started.push_async_callback(await start_consumer(pool, app[BROKER], "ocsp.keys", KEY_HANDLERS))
            app[USAGE] = UsageTracker()
            publisher = UsagePublisher(pool, app[USAGE], interval=usage_interval)
            await publisher.start()
            started.push_async_callback(publisher.stop)  # the last uses are published
            runner = web.AppRunner(online_app(app), access_log=None, shutdown_timeout=5)
            await runner.setup()
            started.push_async_callback(runner.cleanup)  # first to run: :8443 stops, requests end
            await web.TCPSite(runner, config.common.host, config.tls_port, ssl_context=trust.context,
                              reuse_port=config.workers > 1).start()
            app[ONLINE].port = runner.addresses[0][1]
            if OPENAPI in app:
                app[OPENAPI] = {**app[OPENAPI], "paths": {**app[OPENAPI].get("paths", {}), **ONLINE_PATHS}}
            log.info("online_channel_started", port=app[ONLINE].port, users=len(app[KEYS]),
                     pepper=pepper_fingerprint(pepper))
            yield

    return ctx


# -- OpenAPI 3.1 (merged into the service's /openapi.json when the channel starts) -----------

_ONLINE = {"type": "object", "required": ["semaphore", "session_token", "expires_at", "username", "cas"],
           "properties": {"semaphore": {"const": "online"}, "session_token": {"type": "string"},
                          "expires_at": {"type": "string", "format": "date-time"},
                          "username": {"type": "string"}, "cas": {"type": "string"},
                          "message": {"type": "string"},
                          "heartbeat_seconds": {"type": "integer", "description": "how often to beat"}}}
_OFFLINE = {"description": "Offline: problem+json with the reason, in Romanian (English with "
                           "Accept-Language: en)",
            "content": {"application/problem+json": {"schema": {
                "type": "object", "required": ["semaphore", "reason", "message"],
                "properties": {"semaphore": {"const": "offline"}, "reason": {"enum": list(REASONS)},
                               "message": {"type": "string"}, "detail": {"type": "string"}}}}}}
_CHANNEL = {"servers": [{"url": "https://127.0.0.1:8443"}],
            "responses": {"200": {"description": "Online",
                                  "content": {"application/json": {"schema": _ONLINE}}},
                          "401": _OFFLINE}}
ONLINE_PATHS = {
    "/v1/online/connect": {"post": {
        **_CHANNEL, "summary": "Conectare online: mutual TLS + Basic <CUI>_CAS-<cas>:<licence serial>",
        "description": "Served on :8443 only. Online when the presented certificate (TLS client auth, "
                       "issued by a registered issuer) is registered to that external user, neither "
                       "suspended nor revoked, within its validity, and the serial is the user's current "
                       "key. Every attempt is an OCSP log entry (operation connect); an online one "
                       "counts as the certificate's last use.",
        "security": [{"basic": []}]}},
    "/v1/online/heartbeat": {"post": {
        **_CHANNEL, "summary": "Still online? Checks everything again (suspension, revocation, key reset)",
        "description": "Served on :8443 only, with the same client certificate and "
                       "`Authorization: Bearer <session_token>`; answers like connect, with a fresh token.",
        "security": [{"bearer": []}]}},
}
