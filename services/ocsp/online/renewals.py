"""Telling certs of a renewal presented on :8443 (issue 15): a ``RenewalPresented``
event through the outbox, so that certs records it as pending (or approves it, where its
house says so) and the house sees it in its list.

Why an event and not a call: certs owns renewals, and ocsp never waits on another
service to answer a desktop (the channel decides from memory). The desktop is told
``renewal_pending`` at once, by the same holder rule certs applies (``shared.holders``);
the outbox makes the report survive a broker or certs outage, and certs' inbox makes a
repeated report one renewal. A desktop retries every few seconds while offline, so each
process reports one certificate of one user at most once per ``REPORT_EVERY``: the first
presentation is the request, later ones add nothing.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime

import asyncpg

from services.ocsp.online.rules import ClientCert
from shared.events import RenewalPresented, iso
from shared.logging import get_logger
from shared.outbox import add_event

log = get_logger(__name__)

REPORT_EVERY = 300.0       # seconds between two reports of one (user, certificate) by a process
MAX_REMEMBERED = 10_000    # bounds the memory of reports whatever is presented


class RenewalReporter:
    """Reports presented renewals, each (user, certificate) once per ``REPORT_EVERY``."""

    def __init__(self, pool: asyncpg.Pool, *, every: float = REPORT_EVERY,
                 monotonic=time.monotonic) -> None:
        self.pool = pool
        self.every = every
        self.monotonic = monotonic
        self._sent: OrderedDict[tuple[str, str], float] = OrderedDict()

    def due(self, username: str, cert: ClientCert) -> bool:
        """Whether this presentation should be reported (and, if so, noted as reported)."""
        key, now = (username, cert.fingerprint), self.monotonic()
        last = self._sent.get(key)
        if last is not None and now - last < self.every:
            return False
        self._sent[key] = now
        self._sent.move_to_end(key)
        while len(self._sent) > MAX_REMEMBERED:
            self._sent.popitem(last=False)
        return True

    async def report(self, *, username: str, cas: str, cert: ClientCert, replaces: str | None,
                     at: datetime, client: str | None) -> bool:
        """Write the event to the outbox; False (and forgotten, so the next connect tries
        again) when the database is away: the desktop's answer does not depend on it."""
        if not self.due(username, cert):
            return False
        event = RenewalPresented(username=username, issuer_id=cert.issuer_id or "", serial=str(cert.serial),
                                 certificate_pem=cert.pem, presented_at=iso(at),
                                 presented_from=(client or None) and client[:64], replaces=replaces)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await add_event(conn, event, cas)
        except (OSError, asyncpg.PostgresError) as exc:
            self._sent.pop((username, cert.fingerprint), None)
            log.warning("renewal_report_failed", username=username, error=repr(exc))
            return False
        except asyncio.CancelledError:  # the desktop went away mid-write: its next connect reports
            self._sent.pop((username, cert.fingerprint), None)
            raise
        log.info("renewal_reported", username=username, serial=cert.serial_hex)
        return True
