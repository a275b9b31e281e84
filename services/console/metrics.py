"""Panou operational's numbers, read from the services' Prometheus /metrics.

:func:`summarize` turns the text each service serves into the few series the dashboard
draws: OCSP answers by status and by house, online connects, certificate state changes
(suspensions), outbox backlog, HTTP 5xx errors. Counters are passed on as the running
totals they are; the browser turns two samples into a rate, so the console keeps no
state between calls.

Families are read by their exact names (the constants below, as the services
declare them, without the ``_total`` the text format adds): a name the console does not
know shows as a flat chart, so renaming one means changing both sides together. The ocsp
service's workers report through prometheus_client's multiprocess mode, so one scrape
already holds the sum over all of them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HOUSE_LABELS = ("cas", "house")
# services/ocsp/responder.py: {status, cas}, one per CertID answered.
OCSP_ANSWERS = "siui_ocsp_responses"
# services/ocsp/online.py: {cas, result, reason, operation}; heartbeats are not connects.
CONNECTS = "siui_ocsp_online_connects"
# services/certs/routes.py: {cas, action}, counted when the change commits.
STATE_CHANGES = "siui_certs_state_changes"
SUSPENDED = "suspended"
HTTP_REQUESTS = "siui_http_request_seconds"
OUTBOX_BACKLOG = "siui_outbox_backlog"


@dataclass
class Summary:
    """Running totals (counters) and current levels (gauges) across the services."""

    ocsp_by_status: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    ocsp_by_house: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    connects: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    state_changes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    suspension_source: str = ""
    outbox_backlog: dict[str, float] = field(default_factory=dict)
    errors_5xx: dict[str, float] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)

    @property
    def suspensions(self) -> float:
        """Suspensions committed so far (the Suspendat box ticked, or the API's PATCH)."""
        return self.state_changes.get(SUSPENDED, 0.0)

    def to_json(self) -> dict:
        return {"ocsp": {"by_status": dict(self.ocsp_by_status), "by_house": dict(self.ocsp_by_house)},
                "connects": dict(self.connects), "suspensions": self.suspensions,
                "state_changes": dict(self.state_changes),
                "suspension_source": self.suspension_source, "outbox_backlog": self.outbox_backlog,
                "errors_5xx": self.errors_5xx, "unreachable": self.unreachable}


def _label(labels: Mapping[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def _counter_samples(family):
    """The samples that count events: ``_total`` of counters, ``_count`` of histograms."""
    for sample in family.samples:
        if family.type == "counter" and sample.name.endswith("_total"):
            yield sample
        elif family.type == "histogram" and sample.name.endswith("_count"):
            yield sample
        elif family.type in ("gauge", "untyped", "unknown") and sample.name == family.name:
            yield sample


def summarize(texts: Mapping[str, str | None], *, house: str | None = None) -> Summary:
    """The dashboard's numbers from each service's /metrics text (None: it did not
    answer). With ``house``, series carrying a house label keep only that house: a
    county operator never sees another house's traffic."""
    summary = Summary()
    for service, text in texts.items():
        if text is None:
            summary.unreachable.append(service)
            continue
        errors_5xx = 0.0
        for family in text_string_to_metric_families(text):
            if family.name == STATE_CHANGES:
                # Declared even before the first change: the source is known, and zero.
                summary.suspension_source = f"{STATE_CHANGES}_total"
            for sample in _counter_samples(family):
                labels = sample.labels
                sample_house = _label(labels, HOUSE_LABELS)
                if house and sample_house and sample_house != house:
                    continue
                _add(summary, service, family.name, labels, sample_house, sample.value)
                if family.name == HTTP_REQUESTS and labels.get("status", "").startswith("5"):
                    errors_5xx += sample.value
        summary.errors_5xx[service] = errors_5xx
    return summary


def _add(summary: Summary, service: str, name: str, labels: Mapping[str, str], sample_house: str | None,
         value: float) -> None:
    """One sample into the series it belongs to (most samples belong to none)."""
    if name == OUTBOX_BACKLOG:
        schema = labels.get("schema") or service
        summary.outbox_backlog[schema] = summary.outbox_backlog.get(schema, 0.0) + value
    elif name == OCSP_ANSWERS:
        summary.ocsp_by_status[labels.get("status") or "?"] += value
        summary.ocsp_by_house[sample_house or "?"] += value
    elif name == CONNECTS and labels.get("operation", "connect") == "connect":
        summary.connects[labels.get("result") or "?"] += value
    elif name == STATE_CHANGES:
        summary.state_changes[labels.get("action") or "?"] += value
