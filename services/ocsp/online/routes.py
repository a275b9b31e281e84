"""The providers' online channel ("Conectare online") on :8443: mutual TLS plus HTTP Basic
``<CUI>_CAS-<cas>:<licence serial>``.

``POST /v1/online/connect`` answers ``{"semaphore": "online", "session_token", ...}`` only
when the presented certificate is registered to that external user, neither suspended nor
revoked, within its validity, and the serial is the user's current key; otherwise 401
problem+json with ``"semaphore": "offline"``, a ``reason`` code and a ``message`` a person
understands (Romanian; English with ``Accept-Language: en``). ``POST
/v1/online/heartbeat`` (Bearer session token, same certificate) checks it all again, so
the desktop notices a suspension or a key reset while online. Both online answers carry
the certificate's expiry and, from 30 days before it, a warning (``expiry``); a
``key_replaced`` refusal says when the reset was.

HTTP only: ``rules.evaluate`` decides. A connect reads only memory: certificates from the
responder's registry, keys from the ``keystore``; the log and the usage summary are
buffers. keygen is never called. The certificate's own validity is checked there, not by
TLS (``trust``), so that an expired certificate gets a clear 401, not a failed handshake.

Under overload (``shedding``) a connection admitted beyond the bound is answered by
``admission_middleware`` a 503 problem+json with a spread ``Retry-After``, before its
certificate is read or its key checked; beyond the harder bound ``admit`` has it closed
at accept.
"""
from __future__ import annotations

import functools
import json
import ssl
import time
from dataclasses import replace
from datetime import timezone

from aiohttp import BasicAuth, web
from prometheus_client import Counter, Gauge

from services.ocsp.log import OPLOG, LogEntry
from services.ocsp.online.appkeys import KEYS, ONLINE, REFUSALS, RENEWALS, SESSIONS, USAGE
from services.ocsp.online.expiry import expiry_fields, replaced_words
from services.ocsp.online.keys import check_key, replaced_at, replaced_at_of_serial
from services.ocsp.online.rules import (MAX_SECRET, MAX_USERNAME, ClientCert, Verdict, attribute, clean_claim,
                                        evaluate, message_for, pick_language, renewal_of)
from services.ocsp.online.sessions import key_fingerprint, session_key_digest
from services.ocsp.online.shedding import Gate
from services.ocsp.online.trust import TrustStore, identified
from services.ocsp.responder import REGISTRY
from services.ocsp.responder.registry import CertificateRecord
from shared import errors
from shared.authorities import display_name
from shared.db import POOL
from shared.http.problems import SERVICE_NAME, hot_path, problem, request_middleware
from shared.http.clients import remote_address
from shared.logging import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 60         # what the desktop is told; a session outlives many beats

# The dashboard's "conectari": one count per decision. Labels stay bounded: a house code
# (or ""), online|offline, a REASONS code (or "" when online), connect|heartbeat.
CONNECTS = Counter("siui_ocsp_online_connects_total", "Online channel decisions (connect or heartbeat)",
                   ["cas", "result", "reason", "operation"])


def _presented(request: web.Request, trust: TrustStore) -> ClientCert | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return trust.inspect(der) if der else None


def _basic(request: web.Request) -> tuple[str | None, str | None]:
    """(user name, licence serial) of the Basic credentials; (None, None) when absent,
    unreadable or longer than any real one (``rules.MAX_USERNAME``/``MAX_SECRET``)."""
    header = request.headers.get("Authorization", "")
    if len(header) > 512:
        return None, None
    try:
        auth = BasicAuth.decode(header)
    except ValueError:
        return None, None
    login = auth.login.strip()
    if not login or len(login) > MAX_USERNAME or len(auth.password) > MAX_SECRET:
        return None, None
    return login, auth.password


def _finish(request: web.Request, verdict: Verdict, *, username: str | None, cert: ClientCert | None,
            started: float, heartbeat: bool) -> web.Response:
    """Log the attempt, note the use, and answer (raising the 401 for a refusal)."""
    online = request.app[ONLINE]
    now = online.clock()
    record, key = verdict.record, verdict.key
    who = attribute(record, username)
    detail = verdict.reason or ("heartbeat" if heartbeat else None)
    if heartbeat and verdict.reason:
        detail = f"heartbeat:{verdict.reason}"
    if who.claimed:
        detail = f"{detail or 'online'}; claimed {who.claimed}"
    CONNECTS.labels(who.cas or "", "online" if verdict.online else "offline", verdict.reason or "",
                    "heartbeat" if heartbeat else "connect").inc()
    request.app[OPLOG].record(LogEntry(
        at=now, operation="connect", status="online" if verdict.online else "offline",
        latency_ms=(time.perf_counter() - started) * 1000, client=remote_address(request), cas=who.cas,
        username=who.username, serial=cert.serial_text if cert else None,
        issuer_id=cert.issuer_id if cert else None,
        certificate_id=record.certificate_id if record else None, detail=detail))
    language = pick_language(request.headers.get("Accept-Language"))
    values = {"username": clean_claim(username) or "", "serial": cert.serial_hex if cert else "",
              "date": cert.not_after.date().isoformat() if cert else ""}
    if verdict.reason == "certificate_not_yet_valid":
        values["date"] = cert.not_before.date().isoformat()
    if verdict.reason == "revoked_by_issuer":
        values.update(issuer_words(request.app[REGISTRY].issuer(record.issuer_id), record))
    if verdict.reason == "renewal_rejected":
        refusal = request.app[REFUSALS].get(username, cert.issuer_id, cert.serial)
        values["reason"] = refusal.reason if refusal is not None else ""
    extra = {}
    if verdict.reason == "key_replaced":
        values["when"] = replaced_words(verdict.replaced_at, language)
        if verdict.replaced_at is not None:
            extra["replaced_at"] = verdict.replaced_at.astimezone(timezone.utc).isoformat()
    if not verdict.online:
        message = message_for(verdict.reason, language, **values)
        raise errors.Unauthorized(message, semaphore="offline", reason=verdict.reason, message=message,
                                  challenge='Basic realm="SIUI online", charset="UTF-8"', **extra)
    request.app[USAGE].used(record.certificate_id, record.cas, now)
    expires = (now + online.session_ttl).replace(microsecond=0)  # what the token's exp says
    token = request.app[SESSIONS].sign({
        "v": 1, "u": username, "c": record.cas, "cid": record.certificate_id, "fp": cert.fingerprint,
        "kf": key_fingerprint(key), "exp": int(expires.timestamp())})
    return web.json_response({
        "semaphore": "online", "session_token": token, "expires_at": expires.isoformat(),
        "username": username, "cas": record.cas, "message": message_for("online", language, **values),
        "heartbeat_seconds": HEARTBEAT_SECONDS, **expiry_fields(cert.not_after, now, language)},
        dumps=functools.partial(json.dumps, ensure_ascii=False))


def issuer_words(issuer, record: CertificateRecord) -> dict[str, str]:
    """The issuer's name and its revocation time, as the revoked_by_issuer message says them."""
    name = display_name(issuer.certificate_der) if issuer is not None and issuer.certificate_der else "?"
    moment = record.revoked_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if record.revoked_at else "?"
    return {"issuer": name, "date": moment}


def _lookup(request: web.Request, cert: ClientCert | None, username: str | None) -> CertificateRecord | None:
    """The record the channel decides by: this user's own (issue 15: one certificate may
    be registered in several houses, each deciding for itself), else another user's
    (certificate_other_user), else None."""
    if cert is None or cert.issuer_id is None:
        return None
    records = request.app[REGISTRY].house_records(cert.issuer_id, cert.serial)
    return next((r for r in records if r.username == username), records[0] if records else None)


def _renewal(request: web.Request, cert: ClientCert | None, username: str | None,
             record: CertificateRecord | None):
    """(cert with its holder, renewal_of's answer) for an unregistered certificate."""
    if cert is None or record is not None or not username or cert.issuer_id is None or cert.serial_text is None:
        return cert, None
    cert = identified(cert)
    refused = request.app[REFUSALS].get(username, cert.issuer_id, cert.serial) is not None
    return cert, renewal_of(cert, username, request.app[REGISTRY].user_records(username), refused)


# Hot paths (shared.http.problems.hot_path): in a reconnect storm every connect counts, and
# each already leaves its OCSP log entry (with its latency) and its CONNECTS count; the
# generic request id, log line and latency histogram would only repeat them, at a cost.
@hot_path
async def connect(request: web.Request) -> web.Response:
    """POST /v1/online/connect: mutual TLS + Basic; online or a reasoned 401."""
    started = time.perf_counter()
    online = request.app[ONLINE]
    online.trust.refresh()
    cert = _presented(request, online.trust)
    username, serial = _basic(request)
    key = request.app[KEYS].get(username) if username else None
    verdict_of_key = check_key(key, serial or "", online.pepper)
    record = _lookup(request, cert, username)
    cert, renewal = _renewal(request, cert, username, record)
    now = online.clock()
    verdict = evaluate(cert, username, key, record, verdict_of_key, now, renewal[0] if renewal else None)
    if verdict.reason == "renewal_pending":
        # certs records it (the house's list); the desktop's answer does not wait for that.
        followed = renewal[1]
        await request.app[RENEWALS].report(username=username, cas=key.cas, cert=cert,
                                           replaces=followed.certificate_id if followed else None, at=now,
                                           client=remote_address(request))
    if verdict.reason == "key_replaced":  # only a holder of the user's registered certificate gets here
        verdict = replace(verdict, replaced_at=replaced_at_of_serial(key, serial or "", online.pepper))
    return _finish(request, verdict, username=username, cert=cert, started=started, heartbeat=False)


@hot_path
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
        verdict = evaluate(cert, username, key, _lookup(request, cert, username), key_verdict, online.clock())
        if verdict.reason == "key_replaced":
            verdict = replace(verdict, replaced_at=replaced_at(key, session_key_digest(key, claims.get("kf"))))
    return _finish(request, verdict, username=username, cert=cert, started=started, heartbeat=True)


TLS_REFUSED = Counter("siui_ocsp_online_tls_refused_total", "Online channel TLS handshakes refused", ["reason"])


def tls_refused_reason(error: ssl.SSLError) -> str:
    """A bounded name for why a handshake was refused (the metric's label, the log's detail)."""
    text = str(error).lower()
    if "certificate verify failed" in text or "unknown ca" in text:
        return "certificate_untrusted"
    if "took too long" in text:
        return "handshake_timeout"
    if "no shared cipher" in text or "version" in text:
        return "tls_version_or_cipher"
    return "tls_error"


def on_tls_refused(app: web.Application):
    """What the :8443 site does when it refuses a handshake (it has sent the TLS alert):
    count it, say it in the service's log, and put an entry in the OCSP log (attributed to
    no house: no certificate of ours backs it) so operations and CNAS see the attempts."""

    def report(peer: str | None, error: ssl.SSLError) -> None:
        reason = tls_refused_reason(error)
        TLS_REFUSED.labels(reason).inc()
        log.info("online_tls_refused", peer=peer, reason=reason, error=str(error)[:200])
        app[OPLOG].record(LogEntry(at=app[ONLINE].clock(), operation="connect", status="offline",
                                   latency_ms=0.0, client=peer, detail=f"tls:{reason}"))

    return report


def add_routes(app: web.Application) -> None:
    """The :8443 application's routes."""
    app.router.add_post("/v1/online/connect", connect)
    app.router.add_post("/v1/online/heartbeat", heartbeat)


# Connections shed, by how: "retry_after" (a 503 after the handshake), "expired" (waited
# too long for a place, closed unserved) or "accept" (closed before any work). With the
# gauges, the dashboard tells a storm from a slow process.
SHED = Counter("siui_ocsp_online_shed_total", "Online channel connections shed under overload", ["stage"])
# One gate per worker process: the live workers' numbers add up.
INFLIGHT = Gauge("siui_ocsp_online_inflight", "Online channel connections admitted and not yet answered",
                 multiprocess_mode="livesum")
WAITING = Gauge("siui_ocsp_online_waiting", "Online channel connections accepted, waiting for a place",
                multiprocess_mode="livesum")
BUSY_MESSAGE = ("Serverul casei este ocupat acum; aplicația se reconectează singură în câteva secunde.",
                "The house's server is busy right now; the application reconnects by itself in a few seconds.")
_SHED_STAGES = {"closed": "accept", "expired": "expired"}


def observe(what: str, gate: Gate) -> None:
    """The gate's metrics (``Gate.observe``)."""
    stage = _SHED_STAGES.get(what)
    if stage is not None:
        SHED.labels(stage).inc()
    INFLIGHT.set(gate.admitted)
    WAITING.set(gate.waiting)


@web.middleware
async def admission_middleware(request: web.Request, handler):
    """A shed connection's first request gets the 503 at once; an admitted one gives its
    place back as soon as it is answered (a keep-alive connection is not held against
    the bound while it idles). Outside ``request_middleware``: in a storm a shed answer
    costs no request id, log line or latency sample (``SHED`` counts them)."""
    admission = request.transport.get_extra_info("admission") if request.transport else None
    if admission is None or admission.released:
        return await handler(request)
    if admission.shed:
        admission.release()
        SHED.labels("retry_after").inc()
        message = BUSY_MESSAGE[1] if pick_language(request.headers.get("Accept-Language")) == "en" else BUSY_MESSAGE[0]
        seconds = request.app[ONLINE].gate.retry_after_seconds()
        return problem(503, errors.Unavailable.title, message, slug=errors.Unavailable.type_slug,
                       instance=request.path, headers={"Retry-After": str(seconds)}, semaphore="offline",
                       reason="server_busy", message=message)
    try:
        return await handler(request)
    finally:
        admission.release()


def online_app(parent: web.Application) -> web.Application:
    """The small application served on :8443; it shares the parent's resources."""
    app = web.Application(middlewares=[admission_middleware, request_middleware], client_max_size=16 * 1024)
    app[SERVICE_NAME] = parent[SERVICE_NAME] if SERVICE_NAME in parent else "ocsp"
    for key in (POOL, REGISTRY, OPLOG, KEYS, USAGE, SESSIONS, ONLINE, REFUSALS, RENEWALS):
        app[key] = parent[key]
    add_routes(app)
    return app


