"""The online channel's resources in the application (set by ``online_ctx``), shared by
the service's app and the :8443 app."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from services.ocsp.online.keystore import KeyStore
from services.ocsp.online.refusals import RefusalStore
from services.ocsp.online.renewals import RenewalReporter
from services.ocsp.online.sessions import SessionSigner
from services.ocsp.online.shedding import Gate
from services.ocsp.online.trust import TrustStore
from services.ocsp.online.usage import UsageTracker
from shared.clock import Clock


@dataclass
class Online:
    """What the :8443 handlers share (under ``ONLINE`` in both applications): the trust
    store, the licence pepper, the clock, how long a session lasts, the admission gate
    (load shedding), the bound port."""

    trust: TrustStore
    pepper: bytes
    clock: Clock
    session_ttl: timedelta
    gate: Gate
    port: int = 0


ONLINE = web.AppKey("ocsp_online", Online)
KEYS = web.AppKey("ocsp_keys", KeyStore)
SESSIONS = web.AppKey("ocsp_online_sessions", SessionSigner)
USAGE = web.AppKey("ocsp_usage", UsageTracker)
REFUSALS = web.AppKey("ocsp_renewal_refusals", RefusalStore)
RENEWALS = web.AppKey("ocsp_renewal_reporter", RenewalReporter)
