"""Prometheus and Grafana's queries, for real: a real Prometheus scrapes the running stack
with deploy/prometheus's configuration and rules while the test drives the seed's flow
through it (logins, a house-B provider and its key, an issuer and a certificate, OCSP
answers asked with `openssl ocsp`, the online channel on :8443, a suspension). Then every
panel query of both Grafana dashboards and every rule's expression runs against
Prometheus's HTTP API, and each must return data, except the ones listed in AWAITING
(metrics the services do not export yet), which must still be valid PromQL, and must
return nothing: when one starts returning data, this test says to move it out of AWAITING.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import ssl
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import infra
from tests.support.crl_authority import CrlAuthority
from tests.support.identities import new_cui
from tests.support.pki import client, demo_issuer, name
from tests.support.prometheus import PROMETHEUS_DIR, running_prometheus
from tests.support.stack import HTTP_SERVICES
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
HOUSE = "B"
# What Grafana would put in for its variables: the windows cover the whole test.
VARIABLES = {"cas": HOUSE, "__rate_interval": "2m", "__range": "10m", "__interval": "15s"}
# Metrics named by rules and panels that the services do not export yet (see README,
# "Monitoring"): their queries run, but cannot return data until the metric exists.
AWAITING = {
    "siui_tls_certificate_not_after_seconds": "gauge {listener}: notAfter of each TLS server certificate",
}


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace("${" + name + "}", value)
        expr = re.sub(r"\$" + name + r"\b", value, expr)
    assert "$" not in expr, expr
    return expr


def awaited(expr: str) -> str | None:
    return next((metric for metric in AWAITING if metric in expr), None)


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every query of every panel."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for query in panel.get("targets", []):
                out.append((board["uid"], f"{panel['title']} [{query['refId']}]", query["expr"]))
    return out


def rule_files() -> list[dict]:
    return [rule for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def client_certificate(pki, cui: str, directory: Path) -> tuple[Path, Path]:
    """A provider certificate issued by the demo issuing authority: (cert, key) paths."""
    issued = client(demo_issuer(pki), name(cui, organization=f"SC MONITOR {cui} SRL"), now=datetime.now(timezone.utc),
                    days=30)
    return issued.write(directory, "provider")


async def _json(response: aiohttp.ClientResponse, *statuses: int) -> dict:
    assert response.status in statuses, await response.text()
    return await response.json(content_type=None)


async def drive_traffic(stack, pki, http: aiohttp.ClientSession, workdir: Path) -> None:
    """The seed's flow, with every service and both OCSP channels in it."""
    # users: a login, and one refused.
    async with http.post(stack.url("users", "/v1/sessions"),
                         json={"username": "admin", "password": stack.admin_password}) as r:
        headers = {"Authorization": f"Bearer {(await _json(r, 200, 201))['token']}"}
    async with http.post(stack.url("users", "/v1/sessions"),
                         json={"username": "nobody.monitoring", "password": "not-a-password"}) as r:
        assert r.status == 401, await r.text()

    # console: the login form, then the dashboard's numbers.
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1
    async with aiohttp.ClientSession(base_url=stack.url("console"), cookie_jar=jar) as console:
        async with console.get("/") as page:
            csrf = re.search(r'name="csrf" value="([^"]*)"', await page.text()).group(1)
        async with console.post("/", data={"csrf": csrf, "next": "", "username": "admin",
                                           "password": stack.admin_password}, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        async with console.get("/panou/date") as r:
            await _json(r, 200)

    # keygen: a house-B provider and its key (KeyIssued through the outbox).
    for _ in range(5):
        cui = new_cui()
        async with http.post(stack.url("keygen", "/v1/providers"), headers=headers, json={
                "cas": HOUSE, "cui": cui, "name": f"SC MONITOR {cui} SRL", "trade_register_no": "J40/7/2021",
                "legal_representative": {"name": "Ana Pop", "cnp": "1800101221144"}}) as r:
            if r.status == 409:  # that CUI is taken: another one
                continue
            provider = await _json(r, 201)
            break
    else:
        raise AssertionError("no free CUI found")
    async with http.post(stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key"),
                         headers=headers, json={"reset": False}) as r:
        key = await _json(r, 201)
    username, serial = key["external_user"], key["license_serial"]

    # certs: the issuing authority (national) and the provider's certificate.
    async with http.post(stack.url("certs", "/v1/issuers"), headers=headers,
                         json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status in (201, 409), await r.text()
    cert_path, key_path = client_certificate(pki, cui, workdir)
    await publish_a_crl(stack, pki, http, headers)

    async def register():  # the external user reaches certs by event
        async with http.post(stack.url("certs", "/v1/certificates"), headers=headers,
                             json={"username": username, "certificate_pem": cert_path.read_text()}) as r:
            if r.status == 422:
                return None
            return await _json(r, 201)

    certificate = await eventually(register, timeout=15, what="certificate registered")

    # ocsp: the real OpenSSL client, good.
    responder_pem = workdir / "responder.pem"
    async with http.get(stack.url("ocsp", "/v1/responder.pem")) as r:
        assert r.status == 200
        responder_pem.write_bytes(await r.read())

    def openssl_ocsp() -> str:
        result = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(cert_path),
             "-url", stack.url("ocsp", "/"), "-VAfile", str(responder_pem)],
            capture_output=True, text=True, timeout=15)
        return result.stdout + result.stderr

    async def answered(status: str):
        out = await asyncio.to_thread(openssl_ocsp)
        assert "Response verify OK" in out, out
        return f"provider.pem: {status}" in out

    await eventually(lambda: answered("good"), timeout=15, what="OCSP good")
    for _ in range(4):
        assert await answered("good")

    # The online channel (:8443, mutual TLS): online, a heartbeat, and a wrong serial.
    context = ssl.create_default_context(cafile=str(pki.root_ca_cert))
    context.load_cert_chain(cert_path, key_path)
    online = f"https://127.0.0.1:{stack.ports['ocsp_tls']}"

    async def connect(secret: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as channel:  # a new TLS session each time
            async with channel.post(f"{online}/v1/online/connect", ssl=context,
                                    headers={"Authorization": aiohttp.encode_basic_auth(username, secret)}) as r:
                return r.status, await r.json(content_type=None)

    async def connected():
        status, body = await connect(serial)
        return status == 200 and body

    session = await eventually(connected, timeout=15, what="online channel says online")
    async with aiohttp.ClientSession() as channel:
        async with channel.post(f"{online}/v1/online/heartbeat", ssl=context,
                                headers={"Authorization": f"Bearer {session['session_token']}"}) as r:
            assert (await _json(r, 200))["semaphore"] == "online"
    wrong = serial[:-1] + ("0" if serial[-1] != "0" else "1")
    status, body = await connect(wrong)
    assert status == 401 and body["semaphore"] == "offline", body

    # Suspended: a state change in certs, then OCSP says revoked.
    async with http.patch(stack.url("certs", f"/v1/certificates/{certificate['id']}"), headers=headers,
                          json={"suspended": True, "reason": "monitoring e2e"}) as r:
        assert (await _json(r, 200))["suspended"] is True
    await eventually(lambda: answered("revoked"), timeout=15, what="OCSP revoked")


async def publish_a_crl(stack, pki, http: aiohttp.ClientSession, headers: dict) -> None:
    """The demo authority's CRL, served on loopback (make up allows it) and fetched by certs:
    siui_issuer_crl_next_update_seconds then has a series."""
    async with http.get(stack.url("certs", "/v1/issuers"), headers=headers) as r:
        issuers = (await _json(r, 200))["items"]
    subject = demo_issuer(pki).cert.subject
    issuer = next(i for i in issuers if i["hashes"]["sha256"]["name"] == _name_sha256(subject))
    async with CrlAuthority(demo_issuer(pki)).served() as ca:
        async with http.patch(stack.url("certs", f"/v1/issuers/{issuer['id']}"), headers=headers,
                              json={"crl_urls": [ca.url]}) as r:
            await _json(r, 200)

        async def read():
            async with http.get(stack.url("certs", f"/v1/issuers/{issuer['id']}"), headers=headers) as r:
                return (await _json(r, 200))["crl_next_update"]

        await eventually(read, timeout=15, what="the demo authority's CRL read by certs")


def _name_sha256(subject) -> str:
    return hashlib.sha256(subject.public_bytes()).hexdigest()


async def own_totals(stack, http: aiohttp.ClientSession) -> dict[str, float]:
    """Running totals the services serve now, read from their /metrics directly."""
    wanted = {("ocsp", "siui_ocsp_responses"), ("ocsp", "siui_ocsp_online_connects"),
              ("certs", "siui_certs_state_changes")}
    totals: dict[str, float] = {}
    for service, family_name in wanted:
        async with http.get(stack.url(service, "/metrics"), headers=infra.metrics_headers(stack.data_dir)) as r:
            text = await r.text()
        for family in text_string_to_metric_families(text):
            if family.name == family_name:
                totals[family_name + "_total"] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals


async def prometheus_has(prometheus, totals: dict[str, float]) -> None:
    """Wait until Prometheus's latest samples reach what the services serve (ocsp's from
    both workers in one scrape)."""
    assert set(totals) == {"siui_ocsp_responses_total", "siui_ocsp_online_connects_total",
                           "siui_certs_state_changes_total"}, totals

    async def scraped():
        for name, value in totals.items():
            result = await prometheus.query(f"sum({name})")
            if not result or float(result[0]["value"][1]) < value:
                return False
        return True

    await eventually(scraped, timeout=20, what="Prometheus scraped the traffic")


async def scraped_since(prometheus, moment: float, *, rules: bool) -> None:
    async def done():
        targets = (await prometheus.api("targets", state="active"))["activeTargets"]
        groups = (await prometheus.api("rules"))["groups"] if rules else []
        return (all(_at(t["lastScrape"]) > moment for t in targets)
                and all(_at(g["lastEvaluation"]) > moment for g in groups))

    await eventually(done, timeout=20, what="scrapes (and rule evaluations) after the traffic")


async def test_prometheus_scrapes_the_stack_and_every_dashboard_query_has_data(stack, pki, http, tmp_path):
    async with running_prometheus(stack, tmp_path) as prometheus:
        await _run(stack, pki, http, tmp_path, prometheus)


async def _run(stack, pki, http, tmp_path, prometheus):
    # Every service is a target, up, with the labels the deployed config gives it.
    async def all_up():
        targets = (await prometheus.api("targets", state="active"))["activeTargets"]
        return len(targets) == len(HTTP_SERVICES) and all(t["health"] == "up" for t in targets) and targets

    targets = await eventually(all_up, timeout=20, what="every service scraped")
    assert {(t["labels"]["job"], t["labels"]["service"], t["labels"]["instance"]) for t in targets} == {
        (f"siui-{s}", s, f"127.0.0.1:{stack.ports[s]}") for s in HTTP_SERVICES}

    # Twice: Prometheus (2.42) cannot see the increase that creates a series, so the
    # first pass makes every label child (route, status, house, reason, ...) and the
    # second, once those have been scraped, makes each of them grow between two scrapes.
    for number in (1, 2):
        workdir = tmp_path / f"pass{number}"
        workdir.mkdir()
        await drive_traffic(stack, pki, http, workdir)
        await prometheus_has(prometheus, await own_totals(stack, http))
        # Every target scraped since (and, after the last pass, scraped once more and
        # every rule group evaluated on it): a rate over two samples after the traffic.
        await scraped_since(prometheus, time.time() + (1.5 if number == 2 else 0), rules=number == 2)

    # The rules load, every one healthy; the same ones as in the files.
    groups = (await prometheus.api("rules"))["groups"]
    loaded = [rule for group in groups for rule in group["rules"]]
    problems = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not problems, problems
    assert sorted(r["name"] for r in loaded) == sorted(r.get("record") or r["alert"] for r in rule_files())

    # The target's `service` label replaces the histogram's own (no exported_service).
    assert await prometheus.query('count({exported_service!=""})') == []
    up = await prometheus.query('up{job=~"siui-.*"}')
    assert sorted(s["metric"]["service"] for s in up if s["value"][1] == "1") == sorted(HTTP_SERVICES)

    # The per-house view's `cas` variable offers the house the traffic was about.
    house = json.loads((DASHBOARDS / "siui-house.json").read_text())
    (variable,) = [v for v in house["templating"]["list"] if v["name"] == "cas"]
    selector = re.fullmatch(r"label_values\((.+), cas\)", variable["query"]).group(1)
    assert HOUSE in await prometheus.api("label/cas/values", **{"match[]": selector})

    # Every panel query, every recording rule (its expression and its series), every
    # alert's expression.
    checks = [(f"dashboard {uid}: {title}", expr, True) for uid, title, expr in dashboard_queries()]
    for rule in loaded:
        if rule["type"] == "recording":
            checks.append((f"recording rule {rule['name']}", rule["query"], True))
            checks.append((f"recorded series {rule['name']}", rule["name"], True))
        else:
            # A healthy stack need not match an alert's condition: valid PromQL is enough.
            checks.append((f"alert {rule['name']}", rule["query"], False))
    assert len([c for c in checks if c[0].startswith("dashboard")]) == 40
    failures, waiting = [], []
    for what, expr, must_have_data in checks:
        result = await prometheus.query(substitute(expr))
        metric = awaited(expr)
        if metric:
            waiting.append(what)
            if result:
                failures.append(f"{what}: {metric} is exported now; remove it from AWAITING "
                                 f"(and from the README's list of awaited metrics)")
        elif must_have_data and not any(math.isfinite(float(s["value"][1])) for s in result):
            failures.append(f"{what}: no data ({len(result)} samples): {substitute(expr)}")
    assert not failures, "\n".join(failures)
    # Visible, not silently skipped: these wait for the metrics named in AWAITING.
    assert sorted(waiting) == sorted(EXPECTED_AWAITING), sorted(waiting)


EXPECTED_AWAITING = [
    "dashboard siui-national: TLS certificates: days left [A]",
    "alert SiuiTlsCertificateExpiring",
    "alert SiuiTlsCertificateExpiring",
]


def _at(timestamp: str) -> float:
    """Prometheus's RFC 3339 timestamps (UTC, up to nanoseconds) as Unix time."""
    whole, _, fraction = timestamp.removesuffix("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp() + float("0." + (fraction or "0"))
