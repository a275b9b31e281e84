"""Panou operational's numbers, read from the services' Prometheus /metrics.

:func:`summarize` turns the text each service serves into the few series the dashboard
draws: OCSP answers by status and by house, online connects, suspensions, outbox
backlog, HTTP 5xx errors. Counters are passed on as the running totals they are; the
browser turns two samples into a rate, so the console keeps no state between calls.

Families are recognised by name and labels rather than by one exact name, so that a
metric renamed in a service degrades one chart instead of breaking the page.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HOUSE_LABELS = ("cas", "house")
STATUS_LABELS = ("status", "result", "outcome", "semaphore")
OCSP_ANSWERS = re.compile(r"siui_ocsp_(responses|answers|requests)(_total)?$")
CONNECTS = re.compile(r"siui_ocsp_.*connect.*")  # the online channel's connects
SUSPENSIONS = re.compile(r"siui_.*suspen.*")
HTTP_REQUESTS = "siui_http_request_seconds"
OUTBOX_BACKLOG = "siui_outbox_backlog"


@dataclass
class Summary:
    """Running totals (counters) and current levels (gauges) across the services."""

    ocsp_by_status: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    ocsp_by_house: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    connects: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    suspensions: float = 0.0
    suspension_source: str = ""
    outbox_backlog: dict[str, float] = field(default_factory=dict)
    errors_5xx: dict[str, float] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"ocsp": {"by_status": dict(self.ocsp_by_status), "by_house": dict(self.ocsp_by_house)},
                "connects": dict(self.connects), "suspensions": self.suspensions,
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
    suspended = box_changes = 0.0
    for service, text in texts.items():
        if text is None:
            summary.unreachable.append(service)
            continue
        errors_5xx = 0.0
        for family in text_string_to_metric_families(text):
            for sample in _counter_samples(family):
                labels = sample.labels
                sample_house = _label(labels, HOUSE_LABELS)
                if house and sample_house and sample_house != house:
                    continue
                value = sample.value
                if family.name == HTTP_REQUESTS:
                    if labels.get("status", "").startswith("5"):
                        errors_5xx += value
                    if (service == "certs" and labels.get("method") == "PATCH"
                            and labels.get("route", "").startswith("/v1/certificates")
                            and labels.get("status") == "200"):
                        box_changes += value
                elif family.name == OUTBOX_BACKLOG:
                    schema = labels.get("schema") or service
                    summary.outbox_backlog[schema] = summary.outbox_backlog.get(schema, 0.0) + value
                elif service == "ocsp" and OCSP_ANSWERS.match(family.name):
                    status = _label(labels, STATUS_LABELS) or "?"
                    summary.ocsp_by_status[status] += value
                    summary.ocsp_by_house[sample_house or "?"] += value
                elif service == "ocsp" and CONNECTS.match(family.name) and family.type == "counter":
                    summary.connects[_label(labels, STATUS_LABELS) or "total"] += value
                elif SUSPENSIONS.match(family.name) and family.type == "counter":
                    suspended += value
                    summary.suspension_source = family.name
        summary.errors_5xx[service] = errors_5xx
    # A suspension counter when a service has one; else the changes of the Suspendat box.
    summary.suspensions = suspended if summary.suspension_source else box_changes
    if not summary.suspension_source:
        summary.suspension_source = HTTP_REQUESTS
    return summary
