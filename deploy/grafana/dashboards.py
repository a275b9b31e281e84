"""The two SIUI Access dashboards, as Grafana JSON: the national overview and the view of
one house (template variable ``cas``).

``python -m deploy.grafana.dashboards`` writes ``deploy/grafana/dashboards/*.json`` (what
Grafana provisions); ``--check`` only says whether they are up to date (a test does too).
Edit the panels here, not in the JSON.

Every query is PromQL against the series of ``deploy/prometheus/prometheus.yml`` (job
``siui-<service>``, label ``service``). A panel whose metric the services do not export
yet says so in its description ("Awaiting metric ...") and shows "No data" until then.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TRAFFIC = 'job=~"siui-.*", route!~"/metrics|/healthz|/readyz"'
# Series that carry a house: the per-house view offers every house seen in any of them.
HOUSE_SERIES = "siui_ocsp_responses_total|siui_ocsp_online_connects_total|siui_certs_state_changes_total"
AWAITING = "Awaiting metric {metric} from the services: no data until they export it."


def target(expr: str, legend: str = "", ref: str = "A") -> dict:
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto",
            "range": True, "instant": False}


def _targets(queries) -> list[dict]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, queries, *, unit: str = "short", stack: bool = False,
               w: int = 12, h: int = 8, min_zero: bool = True) -> dict:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if not stack else 40,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    defaults = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if min_zero:
        defaults["min"] = 0
    return {"type": "timeseries", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets(queries), "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "_size": (w, h)}


def stat(title: str, description: str, queries, *, unit: str = "short", w: int = 6, h: int = 5,
         mappings: list | None = None, thresholds: list | None = None, reduce: str = "lastNotNull") -> dict:
    steps = thresholds or [{"color": "green", "value": None}]
    return {"type": "stat", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                         "thresholds": {"mode": "absolute", "steps": steps},
                                         "color": {"mode": "thresholds"}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": [reduce], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                        "orientation": "auto", "textMode": "auto"},
            "_size": (w, h)}


def bargauge(title: str, description: str, queries, *, unit: str = "short", w: int = 12, h: int = 8) -> dict:
    return {"type": "bargauge", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "min": 0, "color": {"mode": "palette-classic"},
                                         "thresholds": {"mode": "absolute",
                                                        "steps": [{"color": "green", "value": None}]}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True},
            "_size": (w, h)}


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def _layout(panels: list[dict]) -> list[dict]:
    """Ids and grid positions: left to right, a new line when the width is used up."""
    x = y = line_height = 0
    out = []
    for number, panel in enumerate(panels, start=1):
        w, h = panel.pop("_size")
        if panel["type"] == "row" or x + w > 24:
            y += line_height
            x = line_height = 0
        panel = {"id": number, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel}
        out.append(panel)
        x += w
        line_height = max(line_height, h)
        if panel["type"] == "row":
            y += h
            x = line_height = 0
    return out


def _datasource_variable() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {"selected": False, "text": "SIUI Prometheus", "value": "siui-prometheus"},
            "hide": 0, "refresh": 1, "regex": "", "options": [], "includeAll": False, "multi": False}


def _dashboard(uid: str, title: str, description: str, panels: list[dict], variables: list[dict]) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["siui", "siui-access"],
        "id": None, "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "timezone": "browser", "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "timepicker": {}, "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard"}]},
        "links": [{"title": "SIUI Access dashboards", "type": "dashboards", "tags": ["siui"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}],
        "templating": {"list": [_datasource_variable(), *variables]},
        "panels": _layout(panels),
    }


UP_MAPPINGS = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                             "1": {"text": "UP", "color": "green", "index": 1}}}]
RED_BELOW_ONE = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
DAYS_LEFT = [{"color": "red", "value": None}, {"color": "orange", "value": 3}, {"color": "green", "value": 21}]


def national() -> dict:
    rate = "$__rate_interval"
    panels = [
        row("Services"),
        stat("Service up", "Whether Prometheus can scrape each service's /metrics (ocsp: any of its workers).",
             [('up{job=~"siui-.*"}', "{{service}} {{instance}}")], w=24, h=4, mappings=UP_MAPPINGS,
             thresholds=RED_BELOW_ONE),
        timeseries("Requests/s by service", "HTTP requests served, without /metrics, /healthz and /readyz. "
                   "OCSP answers are counted in the OCSP row.",
                   [(f"sum by (service) (rate(siui_http_request_seconds_count{{{TRAFFIC}}}[{rate}]))",
                     "{{service}}")], unit="reqps"),
        timeseries("HTTP 5xx/s by service", "Requests answered 5xx (0 when none).",
                   [(f'sum by (service) (rate(siui_http_request_seconds_count{{{TRAFFIC}, status=~"5.."}}[{rate}]))'
                     f" or (sum by (service) (rate(siui_http_request_seconds_count{{{TRAFFIC}}}[{rate}])) * 0)",
                     "{{service}}")], unit="reqps"),
        timeseries("HTTP latency p99 by service", "99th percentile of the request time (alert: above 1 s for 10 minutes).",
                   [("histogram_quantile(0.99, sum by (service, le) "
                     f"(rate(siui_http_request_seconds_bucket{{{TRAFFIC}}}[{rate}])))", "{{service}}")], unit="s"),
        timeseries("Staff logins/s by outcome", "Logins to the console and the API (users service).",
                   [(f"sum by (outcome) (rate(siui_users_logins_total[{rate}]))", "{{outcome}}")], unit="reqps"),

        row("OCSP"),
        timeseries("OCSP answers/s by status", "One per CertID answered: good, revoked (suspended certificates "
                   "are revoked/certificateHold), unknown, and the error answers.",
                   [(f"sum by (status) (rate(siui_ocsp_responses_total[{rate}]))", "{{status}}")],
                   unit="reqps", stack=True),
        timeseries("OCSP tryLater share", "Share of answers that were tryLater (load shedding or an internal "
                   "error; alert: above 1% for 5 minutes).",
                   [(f'(sum(rate(siui_ocsp_responses_total{{status="try_later"}}[{rate}])) '
                     f"or (sum(rate(siui_ocsp_responses_total[{rate}])) * 0)) "
                     f"/ sum(rate(siui_ocsp_responses_total[{rate}]))", "tryLater")], unit="percentunit"),
        timeseries("OCSP answer latency", "From the request's body to its answer (alert: p99 above 100 ms for 10 minutes).",
                   [(f"histogram_quantile(0.99, sum by (le) (rate(siui_ocsp_response_seconds_bucket[{rate}])))", "p99"),
                    (f"histogram_quantile(0.50, sum by (le) (rate(siui_ocsp_response_seconds_bucket[{rate}])))", "p50")],
                   unit="s"),
        timeseries("OCSP answers/s by house (top 10)", "The ten houses asked about most.",
                   [(f"topk(10, sum by (cas) (rate(siui_ocsp_responses_total[{rate}])))", "{{cas}}")], unit="reqps"),
        timeseries("OCSP answer age", "Age (now minus thisUpdate) of the answers served (Boulder's freshness "
                   "metric). Pre-signed answers are refreshed at half their validity, so the p99 stays under "
                   "half SIUI_OCSP_VALIDITY; higher means the elected presigner is behind or away.",
                   [(f"histogram_quantile(0.99, sum by (le) (rate(siui_ocsp_response_age_seconds_bucket[{rate}])))", "p99"),
                    (f"histogram_quantile(0.50, sum by (le) (rate(siui_ocsp_response_age_seconds_bucket[{rate}])))", "p50")],
                   unit="s"),
        timeseries("OCSP answers/s by source", "presigned: the bytes every responder shares (one ETag across "
                   "the array); cache: a worker's own earlier signature; live: signed for the request (nonces, "
                   "and the fallback while a pre-signed answer is missing). Presigner: 1 where the lock is held.",
                   [(f"sum by (source) (rate(siui_ocsp_answers_by_source_total[{rate}]))", "{{source}}"),
                    (f"sum(rate(siui_ocsp_presigned_total[{rate}]))", "presigner signs/s"),
                    ("sum(siui_ocsp_presigner_leading)", "presigners leading")], unit="ops"),
        timeseries("Online connects/s by result and reason", "Conectare online decisions on :8443 (heartbeats excluded); "
                   "offline carries the reason shown to the provider.",
                   [(f'sum by (result, reason) (rate(siui_ocsp_online_connects_total{{operation="connect"}}[{rate}]))',
                     "{{result}} {{reason}}")], unit="reqps", w=24),

        row("OCSP log"),
        timeseries("OCSP log: written and dropped", "Entries committed to PostgreSQL, and entries lost because "
                   "the buffer was full (alert: any).",
                   [(f"sum(rate(siui_ocsp_log_written_total[{rate}]))", "written/s"),
                    (f"sum(rate(siui_ocsp_log_dropped_total[{rate}])) "
                     f"or (sum(rate(siui_ocsp_log_written_total[{rate}])) * 0)", "dropped/s")], unit="ops", w=8),
        timeseries("OCSP log: entries waiting", "Entries buffered in the workers' memory (alert: above 100,000).",
                   [("sum by (job) (siui_ocsp_log_buffered)", "waiting")], w=8),
        timeseries("OCSP log: write time p99", "Time to COPY one batch into PostgreSQL.",
                   [(f"histogram_quantile(0.99, sum by (le) (rate(siui_ocsp_log_flush_seconds_bucket[{rate}])))", "p99")],
                   unit="s", w=8),

        row("Events"),
        timeseries("Outbox backlog by schema", "Events committed but not yet confirmed by RabbitMQ (alerts: "
                   "growing for 10 minutes, above 1,000 for 5 minutes).",
                   [("max by (schema) (siui_outbox_backlog)", "{{schema}}")], w=8),
        timeseries("Events published/s by schema", "Events the outbox relays published with confirms.",
                   [(f"sum by (schema) (rate(siui_outbox_published_total[{rate}]))", "{{schema}}")], unit="ops", w=8),
        timeseries("Events consumed/s by queue and outcome", "applied, duplicate (redelivered, no second effect), "
                   "ignored, requeued, failed, dead_lettered.",
                   [(f"sum by (queue, outcome) (rate(siui_events_consumed_total[{rate}]))", "{{queue}} {{outcome}}")],
                   unit="ops", w=8),
        timeseries("Dead-letter messages by queue", "Events parked for good (five real handler failures, "
                   "unreadable, no real house, forged): their effect never happened until replayed with "
                   "python -m deploy.replay_dead_letters.",
                   [("max by (queue) (siui_dead_letter_messages)", "{{queue}}")], w=12),
        timeseries("Events waiting by queue", "Events in the queues, not yet consumed: a consumer behind or down.",
                   [("max by (queue) (siui_queue_messages)", "{{queue}}")], w=12),

        row("Certificates"),
        timeseries("Certificate state changes/min by action", "registered, suspended, reinstated, revoked "
                   "(committed in certs).",
                   [(f"60 * sum by (action) (rate(siui_certs_state_changes_total[{rate}]))", "{{action}}")],
                   unit="short"),
        stat("Certificate state changes in the time range", "Changes committed in the selected time range.",
             [("sum by (action) (increase(siui_certs_state_changes_total[$__range]))", "{{action}}")], w=12, h=8),
        timeseries("Suspension to OCSP, p99", "Time from a suspension committed in certs to every responder "
                   "process holding it (its own broker queue; contract: 1 s), and from a pre-signed answer "
                   "written to every process holding its bytes.",
                   [(f"histogram_quantile(0.99, sum by (le) (rate(siui_ocsp_state_propagation_seconds_bucket"
                     f"{{action=\"suspended\"}}[{rate}])))", "suspension p99"),
                    (f"histogram_quantile(0.99, sum by (le) (rate(siui_ocsp_state_propagation_seconds_bucket"
                     f"{{action=\"presigned\"}}[{rate}])))", "pre-signed answer p99")], unit="s"),
        stat("OCSP signers: days left", "Days until each OCSP signing certificate's notAfter: the "
             "responder's own (issuer default: current, and next while a rotation waits for its switch "
             "time) and the issuers' delegated signers. Answers never outlive their signer.",
             # `> 0` drops the NaN a next signer reads once it has taken over.
             [("((siui_ocsp_signer_not_after_seconds > 0) - time()) / 86400", "{{issuer}} {{signer}}")], unit="d",
             thresholds=DAYS_LEFT, w=4, h=8),
        stat("TLS certificates: days left", AWAITING.format(metric="siui_tls_certificate_not_after_seconds{listener}"),
             [("(siui_tls_certificate_not_after_seconds - time()) / 86400", "{{service}} {{listener}}")], unit="d",
             thresholds=DAYS_LEFT, w=4, h=8),
        stat("Issuer CRLs: hours to nextUpdate",
             "nextUpdate of each issuing authority's newest verified CRL (certs' fetcher). Negative: overdue.",
             [("(siui_issuer_crl_next_update_seconds - time()) / 3600", "{{issuer}}")], unit="h",
             thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 0}], w=4, h=8),
    ]
    return _dashboard("siui-national", "SIUI Access — national overview",
                      "Every service, every house: availability, traffic, OCSP, the online channel, events, certificates.",
                      panels, [])


def house() -> dict:
    rate = "$__rate_interval"
    cas = 'cas="$cas"'
    panels = [
        row("House $cas"),
        stat("OCSP answers ($cas)", "Answers about this house's certificates in the time range.",
             [(f"sum(increase(siui_ocsp_responses_total{{{cas}}}[$__range]))", "answers")]),
        stat("Share of the national OCSP traffic ($cas)", "This house's answers over all answers, in the time range.",
             [(f"sum(increase(siui_ocsp_responses_total{{{cas}}}[$__range])) "
               f"/ sum(increase(siui_ocsp_responses_total[$__range]))", "share")], unit="percentunit"),
        stat("Certificate state changes ($cas)", "Changes committed in the time range, by action.",
             [(f"sum by (action) (increase(siui_certs_state_changes_total{{{cas}}}[$__range]))", "{{action}}")], w=12),
        timeseries("OCSP answers/s by status ($cas)", "revoked includes suspended certificates (certificateHold).",
                   [(f"sum by (status) (rate(siui_ocsp_responses_total{{{cas}}}[{rate}]))", "{{status}}")],
                   unit="reqps", stack=True),
        timeseries("Certificate state changes/min ($cas)", "registered, suspended, reinstated, revoked.",
                   [(f"60 * sum by (action) (rate(siui_certs_state_changes_total{{{cas}}}[{rate}]))", "{{action}}")]),

        row("Online channel ($cas)"),
        timeseries("Online connects/s ($cas)", "Conectare online decisions by result and reason.",
                   [(f'sum by (result, reason) (rate(siui_ocsp_online_connects_total{{{cas}, operation="connect"}}[{rate}]))',
                     "{{result}} {{reason}}")], unit="reqps"),
        timeseries("Online heartbeats/s ($cas)", "Heartbeats of connected desktops; offline means the session "
                   "ended (suspension, key reset, ...).",
                   [(f'sum by (result, reason) (rate(siui_ocsp_online_connects_total{{{cas}, operation="heartbeat"}}[{rate}]))',
                     "{{result}} {{reason}}")], unit="reqps"),
        bargauge("Offline reasons in the time range ($cas)", "Why this house's providers were told offline.",
                 [(f'sum by (reason) (increase(siui_ocsp_online_connects_total{{{cas}, result="offline"}}[$__range]))',
                   "{{reason}}")], w=24),
    ]
    variable = {
        "name": "cas", "label": "Casa (CAS)", "type": "query", "datasource": DATASOURCE,
        "query": f'label_values({{__name__=~"{HOUSE_SERIES}"}}, cas)',
        "definition": f'label_values({{__name__=~"{HOUSE_SERIES}"}}, cas)',
        "refresh": 2, "sort": 1, "regex": "", "multi": False, "includeAll": False,
        "current": {}, "options": [], "hide": 0,
    }
    return _dashboard("siui-house", "SIUI Access — per house",
                      "One health-insurance house (CAS-<code>, or CNAS): its OCSP traffic, its providers' online "
                      "channel and its certificates.", panels, [variable])


DASHBOARDS = {"siui-national.json": national, "siui-house.json": house}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the JSON files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
            print(path)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python -m deploy.grafana.dashboards)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
