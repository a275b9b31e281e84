"""The dashboard's numbers from Prometheus text."""
from __future__ import annotations

from services.console.metrics import summarize

OCSP = """
# TYPE siui_ocsp_responses_total counter
siui_ocsp_responses_total{status="good",cas="B"} 10.0
siui_ocsp_responses_total{status="revoked",cas="B"} 2.0
siui_ocsp_responses_total{status="good",cas="CJ"} 5.0
siui_ocsp_responses_total{status="unauthorized",cas=""} 1.0
# TYPE siui_ocsp_online_connects_total counter
siui_ocsp_online_connects_total{result="online",cas="B"} 4.0
siui_ocsp_online_connects_total{result="offline",cas="CJ"} 1.0
# TYPE siui_outbox_backlog gauge
siui_outbox_backlog{schema="ocsp"} 3.0
# TYPE siui_http_request_seconds histogram
siui_http_request_seconds_count{service="ocsp",route="/",method="POST",status="200"} 18.0
siui_http_request_seconds_count{service="ocsp",route="/",method="POST",status="500"} 2.0
"""
CERTS = """
# TYPE siui_http_request_seconds histogram
siui_http_request_seconds_count{service="certs",route="/v1/certificates/{id}",method="PATCH",status="200"} 7.0
siui_http_request_seconds_count{service="certs",route="/v1/certificates",method="GET",status="503"} 1.0
"""


def test_everything_for_cnas():
    summary = summarize({"ocsp": OCSP, "certs": CERTS, "users": None}).to_json()
    assert summary["ocsp"]["by_status"] == {"good": 15.0, "revoked": 2.0, "unauthorized": 1.0}
    assert summary["ocsp"]["by_house"] == {"B": 12.0, "CJ": 5.0, "?": 1.0}
    assert summary["connects"] == {"online": 4.0, "offline": 1.0}
    assert summary["outbox_backlog"] == {"ocsp": 3.0}
    assert summary["errors_5xx"] == {"ocsp": 2.0, "certs": 1.0}
    assert summary["suspensions"] == 7.0  # no suspension counter: the Suspendat box changes
    assert summary["unreachable"] == ["users"]


def test_a_county_sees_only_its_house():
    summary = summarize({"ocsp": OCSP}, house="B").to_json()
    assert summary["ocsp"]["by_house"] == {"B": 12.0, "?": 1.0}
    assert summary["ocsp"]["by_status"] == {"good": 10.0, "revoked": 2.0, "unauthorized": 1.0}
    assert summary["connects"] == {"online": 4.0}


def test_a_suspension_counter_wins_over_the_http_count():
    text = CERTS + '# TYPE siui_certs_suspensions_total counter\nsiui_certs_suspensions_total{cas="B"} 3.0\n'
    summary = summarize({"certs": text})
    assert summary.suspensions == 3.0 and summary.suspension_source == "siui_certs_suspensions"
