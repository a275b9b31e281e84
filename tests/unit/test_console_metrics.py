"""The dashboard's numbers from Prometheus text, as the services serve it."""
from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest

from services.console.metrics import summarize

OCSP = """
# TYPE siui_ocsp_responses_total counter
siui_ocsp_responses_total{status="good",cas="B"} 10.0
siui_ocsp_responses_total{status="revoked",cas="B"} 2.0
siui_ocsp_responses_total{status="good",cas="CJ"} 5.0
siui_ocsp_responses_total{status="unauthorized",cas=""} 1.0
# TYPE siui_ocsp_response_seconds histogram
siui_ocsp_response_seconds_count 18.0
# TYPE siui_ocsp_online_connects_total counter
siui_ocsp_online_connects_total{cas="B",result="online",reason="",operation="connect"} 4.0
siui_ocsp_online_connects_total{cas="CJ",result="offline",reason="certificate_suspended",operation="connect"} 1.0
siui_ocsp_online_connects_total{cas="B",result="offline",reason="wrong_key",operation="connect"} 2.0
siui_ocsp_online_connects_total{cas="B",result="online",reason="",operation="heartbeat"} 30.0
# TYPE siui_outbox_backlog gauge
siui_outbox_backlog{schema="ocsp"} 3.0
# TYPE siui_http_request_seconds histogram
siui_http_request_seconds_count{service="ocsp",route="/",method="POST",status="200"} 18.0
siui_http_request_seconds_count{service="ocsp",route="/",method="POST",status="500"} 2.0
"""
CERTS = """
# TYPE siui_certs_state_changes_total counter
siui_certs_state_changes_total{cas="B",action="registered"} 9.0
siui_certs_state_changes_total{cas="B",action="suspended"} 3.0
siui_certs_state_changes_total{cas="CJ",action="suspended"} 1.0
siui_certs_state_changes_total{cas="B",action="reinstated"} 1.0
siui_certs_state_changes_total{cas="CJ",action="revoked"} 2.0
"""
CERTS_HTTP = """
# TYPE siui_http_request_seconds histogram
siui_http_request_seconds_count{service="certs",route="/v1/certificates/{id}",method="PATCH",status="200"} 7.0
siui_http_request_seconds_count{service="certs",route="/v1/certificates",method="GET",status="503"} 1.0
"""


def test_everything_for_cnas():
    summary = summarize({"ocsp": OCSP, "certs": CERTS + CERTS_HTTP, "users": None}).to_json()
    assert summary["ocsp"]["by_status"] == {"good": 15.0, "revoked": 2.0, "unauthorized": 1.0}
    assert summary["ocsp"]["by_house"] == {"B": 12.0, "CJ": 5.0, "?": 1.0}
    # Connects by result, whatever the reason; heartbeats are not connects.
    assert summary["connects"] == {"online": 4.0, "offline": 3.0}
    assert summary["suspensions"] == 4.0
    assert summary["state_changes"] == {"registered": 9.0, "suspended": 4.0, "reinstated": 1.0, "revoked": 2.0}
    assert summary["suspension_source"] == "siui_certs_state_changes_total"
    assert summary["outbox_backlog"] == {"ocsp": 3.0}
    assert summary["errors_5xx"] == {"ocsp": 2.0, "certs": 1.0}
    assert summary["unreachable"] == ["users"]


def test_a_county_sees_only_its_house():
    summary = summarize({"ocsp": OCSP, "certs": CERTS}, house="B").to_json()
    assert summary["ocsp"]["by_house"] == {"B": 12.0, "?": 1.0}
    assert summary["ocsp"]["by_status"] == {"good": 10.0, "revoked": 2.0, "unauthorized": 1.0}
    assert summary["connects"] == {"online": 4.0, "offline": 2.0}
    assert summary["suspensions"] == 3.0
    assert summary["state_changes"] == {"registered": 9.0, "suspended": 3.0, "reinstated": 1.0}


def test_no_suspension_yet_is_zero_from_the_counter_not_a_guess():
    # A declared counter without children: certs is up, nothing was suspended yet. The
    # PATCH count (a click that changes nothing counts there too) is not used instead.
    registry = CollectorRegistry()
    Counter("siui_certs_state_changes_total", "changes", ["cas", "action"], registry=registry)
    summary = summarize({"certs": generate_latest(registry).decode() + CERTS_HTTP}).to_json()
    assert summary["suspensions"] == 0.0
    assert summary["suspension_source"] == "siui_certs_state_changes_total"


def test_certs_down_says_so_instead_of_zero_suspensions_from_nowhere():
    summary = summarize({"certs": None}).to_json()
    assert summary["suspensions"] == 0.0 and summary["suspension_source"] == ""
    assert summary["unreachable"] == ["certs"]


def test_the_names_and_labels_the_services_declare_are_the_ones_read():
    # The services' own counters, exposed by prometheus_client: a renamed metric or label
    # on either side fails here instead of silently flattening a chart.
    from services.certs.routes import STATE_CHANGES
    from services.ocsp.online.routes import CONNECTS
    from services.ocsp.responder.wire import RESPONSES

    def now() -> dict:
        return summarize({"ocsp": generate_latest(REGISTRY).decode()}).to_json()

    before = now()
    RESPONSES.labels(status="good", cas="B").inc()
    CONNECTS.labels(cas="B", result="offline", reason="wrong_key", operation="connect").inc()
    CONNECTS.labels(cas="B", result="online", reason="", operation="heartbeat").inc()
    STATE_CHANGES.labels(cas="B", action="suspended").inc()
    after = now()
    assert after["ocsp"]["by_status"]["good"] - before["ocsp"]["by_status"].get("good", 0) == 1
    assert after["connects"]["offline"] - before["connects"].get("offline", 0) == 1
    assert after["connects"].get("online", 0) == before["connects"].get("online", 0)
    assert after["suspensions"] - before["suspensions"] == 1


def test_gauges_of_a_multi_process_service_are_not_split_by_worker():
    # A livesum/livemax gauge comes out of MultiProcessCollector without a pid label;
    # the backlog is read as one number per schema either way.
    registry = CollectorRegistry()
    Gauge("siui_outbox_backlog", "backlog", ["schema"], registry=registry).labels("ocsp").set(5)
    summary = summarize({"ocsp": generate_latest(registry).decode()}).to_json()
    assert summary["outbox_backlog"] == {"ocsp": 5.0}
