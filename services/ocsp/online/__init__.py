"""The providers' online channel ("Conectare online") on :8443.

The desktop presents the provider's certificate (mutual TLS, ``trust``) and HTTP Basic
``<CUI>_CAS-<cas>:<licence serial>``; ``rules`` decides from memory only: the
certificate's record in the responder's registry, the user's key in the ``keystore``
(fed by ``consumers`` from keygen's and users' events, with the pure rules of ``keys``).
An online desktop gets a session token (``sessions``) for its heartbeats; every decision
is an OCSP log entry, and each online one counts as the certificate's last use
(``usage``, published by ``publisher``). A certificate that is not registered but renews
one of the user's (``rules.renewal_of``) is answered ``renewal_pending`` and reported to
certs (``renewals``); one its house rejected, ``renewal_rejected`` (``refusals``).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from services.ocsp.config import Config
from services.ocsp.online.appkeys import KEYS, ONLINE, REFUSALS, RENEWALS, SESSIONS, USAGE, Online
from services.ocsp.online.consumers import HANDLERS, RENEWAL_HANDLERS
from services.ocsp.online.keystore import KeyStore, KeySync
from services.ocsp.online.openapi import OPENAPI
from services.ocsp.online.queries import KEYS_CHANNEL, REFUSALS_CHANNEL
from services.ocsp.online.refusals import RefusalStore, RefusalSync
from services.ocsp.online.renewals import RenewalReporter
from services.ocsp.online.routes import add_routes, observe, on_tls_refused, online_app
from services.ocsp.online.sessions import SessionSigner
from services.ocsp.online.shedding import Gate
from services.ocsp.online.trust import TrustStore
from services.ocsp.online.usage import UsageTracker
from services.ocsp.online.publisher import DEFAULT_INTERVAL, publishing
from services.ocsp.responder import REGISTRY
from shared.clock import Clock, utc_now
from shared.db import POOL
from shared.http.proxied import ProxyTrust
from shared.http.serving import GuardedAppRunner, GuardedTCPSite
from shared.license import load_pepper, pepper_fingerprint
from shared.listen import LISTENER
from shared.logging import get_logger
from shared.tasks import BackgroundTask

__all__ = ["HANDLERS", "KEYS", "ONLINE", "OPENAPI", "RENEWAL_HANDLERS", "SESSIONS", "USAGE", "add_routes",
           "online_ctx"]

log = get_logger(__name__)

SESSION_TTL = timedelta(minutes=15)
# The kernel's queue of connections not yet accepted. Accepting is cheap and the gate
# (shedding) decides right after, so this only absorbs a burst between two turns of the
# event loop; SYNs beyond it are dropped and retried by the clients' TCP (1 s, 3 s, ...).
ACCEPT_BACKLOG = 512


def online_ctx(config: Config, *, clock: Clock = utc_now, session_ttl: timedelta = SESSION_TTL,
               usage_interval: float = DEFAULT_INTERVAL):
    """cleanup_ctx: keys in memory (followed from the table the ``ocsp.keys`` consumer
    writes), the usage publisher, and the :8443 TLS site in its own runner. Append after
    ``log_ctx`` and after the registry is loaded; it stops before them, so its last
    entries are logged and its last uses published."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # Files first: a missing secret fails the start before anything runs.
        app[SESSIONS] = SessionSigner.from_data_key(config.common.data_key_path)
        pepper = load_pepper(config.common.license_pepper_path)
        trust = TrustStore(app[REGISTRY], config.tls_cert, config.tls_key,
                           ticket_secret=app[SESSIONS].ticket_secret())
        trust.refresh()
        gate = Gate(config.online_max_inflight, config.online_max_waiting, config.online_max_shedding,
                    config.online_max_wait, config.online_retry_after, observe=observe)
        app[ONLINE] = Online(trust, pepper, clock, session_ttl, gate)
        pool = app[POOL]
        # Whatever started is stopped in reverse order, also when a later step fails.
        async with contextlib.AsyncExitStack() as started:
            app[KEYS] = KeyStore()
            sync = KeySync(pool, app[KEYS], app[LISTENER].subscribe(KEYS_CHANNEL))
            syncing = BackgroundTask("ocsp-keys-sync", sync.run, cancel_on_stop=True)
            syncing.start()
            started.push_async_callback(syncing.stop)
            await asyncio.wait_for(sync.loaded.wait(), config.load_timeout)
            # Rejected renewals (issue 15), followed like the keys.
            app[REFUSALS] = RefusalStore()
            refusals = RefusalSync(pool, app[REFUSALS], app[LISTENER].subscribe(REFUSALS_CHANNEL))
            following = BackgroundTask("ocsp-refusals-sync", refusals.run, cancel_on_stop=True)
            following.start()
            started.push_async_callback(following.stop)
            await asyncio.wait_for(refusals.loaded.wait(), config.load_timeout)
            app[RENEWALS] = RenewalReporter(pool)
            app[USAGE] = UsageTracker()
            publisher = BackgroundTask("ocsp-usage", publishing(pool, app[USAGE], interval=usage_interval))
            publisher.start()
            started.push_async_callback(publisher.stop)  # the last uses are published
            runner = GuardedAppRunner(online_app(app), access_log=None, shutdown_timeout=5)
            await runner.setup()
            started.push_async_callback(runner.cleanup)  # first to run: :8443 stops, requests end
            proxy_trust = (ProxyTrust(config.common.trusted_proxies, config.online_proxy_header_timeout)
                           if config.online_proxy_protocol else None)
            await GuardedTCPSite(runner, config.common.host, config.tls_port, ssl_context=trust.context,
                                 reuse_port=config.workers > 1, on_tls_refused=on_tls_refused(app),
                                 admit=gate.arrive, backlog=ACCEPT_BACKLOG, proxy_trust=proxy_trust).start()
            app[ONLINE].port = runner.addresses[0][1]
            log.info("online_channel_started", port=app[ONLINE].port, users=len(app[KEYS]),
                     pepper=pepper_fingerprint(pepper), shared_tickets=trust.shared_tickets,
                     max_inflight=gate.max_inflight, max_waiting=gate.max_waiting,
                     proxy_protocol=proxy_trust is not None)
            yield

    return ctx
