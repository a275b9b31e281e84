"""Last use of certificates, summarised into ``CertificateUsed`` events.

A successful online connect or heartbeat calls ``UsageTracker.used`` (a dict write, no
I/O). Every few seconds ``publisher`` publishes, per house, ONE ``CertificateUsed``
carrying each certificate used since the last one with its latest use, through the
outbox; certs turns it into ``last_used_at``. OCSP queries do not count: they are made
by whoever validates a certificate, not by its holder using it.

What a crash can lose: at most the uses of the last interval, which only delays a
``last_used_at`` until the certificate is used again.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from shared.events import CertificateUsed

MAX_PER_EVENT = 1000  # usages per event: keeps one message small whatever the load


class UsageTracker:
    """Latest use per certificate since the last publication."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[str, datetime]] = {}  # certificate_id -> (cas, at)

    def used(self, certificate_id: str, cas: str, at: datetime) -> None:
        """Note that ``certificate_id`` (of house ``cas``) was used at ``at``."""
        held = self._latest.get(certificate_id)
        if held is None or at > held[1]:
            self._latest[certificate_id] = (cas, at)

    @property
    def pending(self) -> int:
        return len(self._latest)

    def drain(self) -> dict[str, list[CertificateUsed]]:
        """Take everything noted so far, as events grouped by house."""
        taken, self._latest = self._latest, {}
        return summarise(taken)

    def restore(self, certificate_id: str, cas: str, at: datetime) -> None:
        """Put back a use whose event could not be written (a newer one wins)."""
        self.used(certificate_id, cas, at)


def summarise(latest: dict[str, tuple[str, datetime]]) -> dict[str, list[CertificateUsed]]:
    """``{cas: [CertificateUsed, ...]}``: one event per house (split beyond MAX_PER_EVENT)."""
    by_house: dict[str, list[dict[str, str]]] = defaultdict(list)
    for certificate_id, (cas, at) in sorted(latest.items(), key=lambda kv: kv[1][1]):
        by_house[cas].append({"certificate_id": certificate_id, "last_used_at": at.isoformat()})
    return {cas: [CertificateUsed(usages=usages[i:i + MAX_PER_EVENT])
                  for i in range(0, len(usages), MAX_PER_EVENT)]
            for cas, usages in by_house.items()}
