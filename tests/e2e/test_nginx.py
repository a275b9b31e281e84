"""The stack behind the real nginx with deploy/nginx's configuration (tests/support/nginx.py):
TLS 1.2+ only, plain http only redirecting, the seed's flow over https (OCSP POST with
the real OpenSSL client and GET as RFC 5019 has it, the OCSP log's live stream), the
console's login with a ``Secure`` ``__Host-`` cookie and HSTS, nginx's own refusals in
the services' forms, and the client's address reaching the services through
X-Forwarded-For: each test client binds its own loopback address (127.0.0.2, 127.0.0.3;
Linux routes all of 127/8 to lo), nginx connects from 127.0.0.1, which is the stack's
SIUI_TRUSTED_PROXIES, and the audit trail and keygen's activation throttle must see
the client's address, never nginx's.

A stack of its own (a fresh database and exchange): it is started with
SIUI_TRUSTED_PROXIES and a low activation limit, and registers the demo provider's
certificate, as the seed-flow test does on the session's stack.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import ssl
import socket
import subprocess
import uuid
import warnings
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from shared import license
from tests.support import infra
from tests.support.nginx import running_nginx
from tests.support.stack import descendants, start_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e
NGINX_ADDRESS = "127.0.0.1"      # where nginx connects to the services from: the trusted proxy
CLERK, DESKTOP = "127.0.0.3", "127.0.0.2"   # two clients, each on its own loopback address
MAX_FAILURES = 3
HSTS = "max-age=31536000; includeSubDomains"
# The TLS 1.2 suites an ECDSA certificate can be served with by deploy/nginx/nginx.conf.
FORWARD_SECRET_AEAD = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                       "ECDHE-ECDSA-CHACHA20-POLY1305"}
CUI = "12433636"
USER = f"{CUI}_CAS-B"


@pytest.fixture(scope="module")
def proxied_stack(pki):
    database_url = asyncio.run(infra.create_database("siui_nginx_e2e"))
    exchange = f"siui.nginx-e2e.{uuid.uuid4().hex[:8]}"
    running = start_stack(pki.data_dir, database_url, exchange, name="nginx-stack", extra_env={
        "SIUI_TRUSTED_PROXIES": NGINX_ADDRESS, "SIUI_ACTIVATION_MAX_FAILURES": str(MAX_FAILURES)})
    try:
        yield running
    finally:
        code = running.stop()
        asyncio.run(infra.drop_database(database_url))
        asyncio.run(infra.delete_exchange(exchange))
    assert code == 0, f"the stack did not stop cleanly ({code}); see {running.log_path}"


@pytest.fixture(scope="module")
def nginx(proxied_stack, tmp_path_factory):
    with running_nginx(proxied_stack, tmp_path_factory.mktemp("nginx")) as running:
        yield running


def client(nginx, source: str) -> aiohttp.ClientSession:
    """An https client from loopback address ``source``, trusting the test CA only; no
    cookie jar (the tests read Set-Cookie themselves, prefixes and attributes included)."""
    connector = aiohttp.TCPConnector(ssl=nginx.tls.client_context(), local_addr=(source, 0))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


@pytest.fixture(scope="module")
async def clerk(nginx):
    async with client(nginx, CLERK) as session:
        yield session


@pytest.fixture(scope="module")
async def admin(nginx, clerk, proxied_stack):
    """The national admin's Authorization header, logged in through the proxy."""
    async with clerk.post(nginx.url("users", "/v1/sessions"),
                          json={"username": "admin", "password": proxied_stack.admin_password}) as r:
        assert r.status == 201, await r.text()
        assert r.headers.getall("Strict-Transport-Security") == [HSTS]
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


@pytest.fixture(scope="module")
async def provider(nginx, clerk, admin):
    """A provider of house B and its activation key, made through the proxy by the clerk."""
    async with clerk.post(nginx.url("keygen", "/v1/providers"), headers=admin, json={
        "cas": "B", "cui": CUI, "name": "SC DEMO MEDICAL SRL", "trade_register_no": "J40/10/3456",
        "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"},
    }) as r:
        assert r.status == 201, await r.text()
        provider_id = (await r.json())["id"]
    async with clerk.post(nginx.url("keygen", f"/v1/providers/{provider_id}/activation-key"), headers=admin,
                          json={"reset": False}) as r:
        assert r.status == 201, await r.text()
        issued = await r.json()
    assert issued["external_user"] == USER
    return {"id": provider_id, "serial": issued["license_serial"]}


# -- TLS and plain http --------------------------------------------------------------------

def handshake(port: int, *, version: ssl.TLSVersion, ciphers: str | None = None, cafile: Path | None = None,
              server_hostname: str = "127.0.0.1") -> tuple[str, str]:
    """One TLS handshake with nginx at exactly ``version``: (protocol, cipher), or SSLError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version(), tls.cipher()[0]


def test_tls_1_2_and_1_3_only_with_forward_secret_aead_suites(nginx):
    for service in ("console", "keygen", "users", "certs", "ocsp"):
        port = nginx.ports[service]
        assert handshake(port, version=ssl.TLSVersion.TLSv1_3, cafile=nginx.tls.ca)[0] == "TLSv1.3"
        version, cipher = handshake(port, version=ssl.TLSVersion.TLSv1_2, cafile=nginx.tls.ca)
        assert version == "TLSv1.2" and cipher in FORWARD_SECRET_AEAD, cipher
    port = nginx.ports["ocsp"]
    # TLS 1.1, offered by a client that allows it: the server's alert refuses it.
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python's, for asking for TLS 1.1 at all
        handshake(port, version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    # TLS 1.2 with only CBC or SHA-1 suites: none of them is served.
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        handshake(port, version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384")
    # A name that is none of ours (the default server of :443) is refused in the handshake.
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        handshake(nginx.ports["https-default"], version=ssl.TLSVersion.TLSv1_3, server_hostname="other.example")


async def test_plain_http_only_redirects_to_https(nginx):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{nginx.ports['http']}/v1/sessions?x=1", allow_redirects=False,
                             headers={"Host": "users.siui.example"}, json={"username": "admin"}) as r:
            assert r.status == 301 and r.headers["Location"] == "https://users.siui.example/v1/sessions?x=1"
            assert "Strict-Transport-Security" not in r.headers  # meaningless over http
        with pytest.raises(aiohttp.ServerDisconnectedError):  # any other name: no answer at all
            async with http.get(f"http://127.0.0.1:{nginx.ports['http-default']}/",
                                headers={"Host": "other.example"}):
                pass


# -- the seed's flow over https ------------------------------------------------------------

def openssl_ocsp(pki, responder: Path, *how: str) -> str:
    """The real OpenSSL client about the demo provider's certificate: asking (``-url``) or
    reading an answer fetched otherwise (``-respin``); its combined output."""
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(pki.demo_provider_cert),
         "-VAfile", str(responder), *how], capture_output=True, text=True, timeout=15)
    return result.stdout + result.stderr


def ocsp_request_with(pki, needle: str) -> bytes:
    """An OCSP request (SHA-1 CertID and a random nonce) whose base64 holds ``needle``:
    a GET path with "//" or "+" must reach the responder as it was sent."""
    cert = x509.load_pem_x509_certificate(pki.demo_provider_cert.read_bytes())
    issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    for _ in range(20_000):
        der = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
               .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False).build()
               .public_bytes(serialization.Encoding.DER))
        if needle in base64.b64encode(der).decode():
            return der
    raise AssertionError(f"no request with {needle!r} in its base64")


async def next_event(stream: aiohttp.ClientResponse, matches, timeout: float = 10) -> dict:
    """The next Server-Sent Event whose data (JSON) ``matches``, within ``timeout`` seconds."""
    async def read() -> dict:
        async for raw in stream.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                if matches(data):
                    return data
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)


async def test_the_seed_flow_over_https(nginx, proxied_stack, clerk, admin, provider, pki, tmp_path):
    async def user_exists():
        async with clerk.get(nginx.url("users", "/v1/users"), headers=admin,
                             params={"type": "external", "q": CUI}) as r:
            return (await r.json())["total"] == 1

    await eventually(user_exists, what="external user created from KeyIssued")
    async with clerk.post(nginx.url("certs", "/v1/issuers"), headers=admin,
                          json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status == 201, await r.text()

    async def registered():
        async with clerk.post(nginx.url("certs", "/v1/certificates"), headers=admin,
                              json={"username": USER, "certificate_pem": pki.demo_provider_cert.read_text()}) as r:
            if r.status == 422:  # certs has not heard of the external user yet
                return None
            assert r.status == 201, await r.text()
            return await r.json()

    await eventually(registered, what="certificate registered")
    responder = tmp_path / "responder.pem"
    async with clerk.get(nginx.url("ocsp", "/v1/responder.pem")) as r:
        assert r.status == 200
        responder.write_bytes(await r.read())

    # The OCSP log's live stream, through the proxy, open before the questions are asked.
    async with clerk.get(nginx.url("ocsp", "/v1/log/stream"), headers=admin,
                         timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")

        # POST, with the real OpenSSL client, over https.
        async def good():
            out = await asyncio.to_thread(openssl_ocsp, pki, responder, "-url", nginx.url("ocsp", "/"))
            assert "Response verify OK" in out, out
            return "demo-provider.pem: good" in out

        await eventually(good, what="OCSP good through nginx")
        entry = await next_event(stream, lambda e: e["operation"] == "ocsp" and e["status"] == "good")
        assert entry["username"] == USER

    # GET /{base64} (RFC 5019): percent-encoded, and raw with "//" in it. OpenSSL checks
    # each answer (signature, status); the nonce must come back as it was sent.
    for needle, encode in (("+", lambda text: quote(text, safe="")), ("//", str)):
        request = ocsp_request_with(pki, needle)
        async with clerk.get(nginx.url("ocsp", "/" + encode(base64.b64encode(request).decode()))) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/ocsp-response", needle
            assert r.headers.getall("Strict-Transport-Security") == [HSTS]
            answer = await r.read()
        (tmp_path / "answer.der").write_bytes(answer)
        out = await asyncio.to_thread(openssl_ocsp, pki, responder, "-respin", str(tmp_path / "answer.der"),
                                      "-no_nonce")
        assert "Response verify OK" in out and "demo-provider.pem: good" in out, out
        sent = ocsp.load_der_ocsp_request(request).extensions.get_extension_for_class(x509.OCSPNonce)
        echoed = ocsp.load_der_ocsp_response(answer).extensions.get_extension_for_class(x509.OCSPNonce)
        assert echoed.value.nonce == sent.value.nonce

    # The responder's front logs those answers against the clerk's address, not nginx's.
    async def logged_from_clerk():
        async with clerk.get(nginx.url("ocsp", "/v1/log"), headers=admin,
                             params={"operation": "ocsp", "limit": "50"}) as r:
            assert r.status == 200, await r.text()
            return [e for e in (await r.json())["items"] if e["client"] == CLERK]

    entries = await eventually(logged_from_clerk, what="the GET answers logged against the clerk's address")
    assert all(e["status"] == "good" for e in entries)


# -- the client's address reaches the services ------------------------------------------------

async def test_the_audit_trail_records_the_clients_address_not_the_proxys(nginx, clerk, admin, provider):
    async with clerk.get(nginx.url("keygen", "/v1/audit"), headers=admin, params={"limit": "1000"}) as r:
        assert r.status == 200, await r.text()
        mine = [e for e in (await r.json())["items"] if e["target_id"] == provider["id"]]
    assert {e["action"] for e in mine} == {"POST /v1/providers", "POST /v1/providers/{id}/activation-key"}
    assert {e["address"] for e in mine} == {CLERK}


async def test_the_activation_throttle_counts_each_clients_address(nginx, proxied_stack, clerk, provider):
    url = nginx.url("keygen", "/v1/activations")
    never_issued = [license.generate() for _ in range(MAX_FAILURES + 2)]
    async with client(nginx, DESKTOP) as desktop:
        for serial in never_issued[:MAX_FAILURES]:
            async with desktop.post(url, json={"license_serial": serial, "cas": "B"}) as r:
                assert r.status == 403, await r.text()
        # The limit is reached for this address; a forwarded-for header it makes up itself
        # does not help (nginx appends the address it really came from, which is counted).
        async with desktop.post(url, json={"license_serial": never_issued[-1], "cas": "B"},
                                headers={"X-Forwarded-For": "198.51.100.7"}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0, await r.text()
        # Another address behind the same proxy is not throttled with it.
        async with clerk.post(url, json={"license_serial": never_issued[-2], "cas": "B"}) as r:
            assert r.status == 403, await r.text()
        # And the provider's own key is always let in, even from the throttled address.
        async with desktop.post(url, json={"license_serial": provider["serial"], "cas": "B"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["external_user"] == USER

    conn = await asyncpg.connect(proxied_stack.database_url)
    try:
        rows = await conn.fetch("select address, outcome from keygen.activation_attempts")
    finally:
        await conn.close()
    assert Counter((r["address"], r["outcome"]) for r in rows) == {
        (DESKTOP, "unknown-key"): MAX_FAILURES, (DESKTOP, "ok"): 1, (CLERK, "unknown-key"): 1}


# -- the console over https -------------------------------------------------------------------

def console_cookie(response: aiohttp.ClientResponse) -> tuple[str, str, set[str]]:
    """The session cookie's name, value and attributes (lower case, without values)."""
    (header,) = [h for h in response.headers.getall("Set-Cookie", []) if "siui_console=" in h]
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    return name, value, {a.split("=")[0].lower() for a in attributes}


async def test_the_console_over_https_has_a_secure_host_cookie_and_hsts(nginx, proxied_stack, pki, tmp_path):
    async with client(nginx, DESKTOP) as browser:
        async with browser.get(nginx.url("console", "/")) as r:
            assert r.status == 200
            page = await r.text()
            assert 'name="password"' in page
            # One HSTS header (nginx's; the console's own is replaced, not doubled).
            assert r.headers.getall("Strict-Transport-Security") == [HSTS]
            name, value, attributes = console_cookie(r)
            assert name == "__Host-siui_console"
            assert {"secure", "httponly", "samesite", "path"} <= attributes and "domain" not in attributes
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        async with browser.post(nginx.url("console", "/"), allow_redirects=False,
                                headers={"Cookie": f"{name}={value}"},
                                data={"csrf": csrf, "username": "admin",
                                      "password": proxied_stack.admin_password}) as r:
            assert r.status == 303 and r.headers["Location"] == "/furnizori", await r.text()
            assert r.headers.getall("Strict-Transport-Security") == [HSTS]
            name, value, attributes = console_cookie(r)
            assert name == "__Host-siui_console" and "secure" in attributes
        cookie = {"Cookie": f"{name}={value}"}
        async with browser.get(nginx.url("console", "/furnizori"), headers=cookie, allow_redirects=False) as r:
            assert r.status == 200 and "Furnizori" in await r.text()

        # Log OCSP, live: the console's relay of the stream, through the proxy as it happens.
        async with browser.get(nginx.url("console", "/log-ocsp/stream"), headers=cookie,
                               timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as stream:
            assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
            responder = tmp_path / "responder.pem"
            responder.write_bytes(pki.responder_cert.read_bytes())
            await asyncio.to_thread(openssl_ocsp, pki, responder, "-url", nginx.url("ocsp", "/"))
            assert (await next_event(stream, lambda e: e["operation"] == "ocsp"))["status"]


async def test_nginx_refusals_are_answered_like_the_services(nginx, clerk):
    """What nginx refuses itself (a body over the service's limit) is answered as the
    service would: problem+json on the APIs, the console's page in Romanian."""
    async with clerk.post(nginx.url("keygen", "/v1/providers"), data=b"{" + b" " * (1024 ** 2),
                          headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413 and r.headers["Content-Type"] == "application/problem+json"
        assert (await r.json())["type"] == "/problems/payload-too-large"
    async with clerk.post(nginx.url("ocsp", "/"), data=b"0" * (64 * 1024 + 1),
                          headers={"Content-Type": "application/ocsp-request"}) as r:
        assert r.status == 413 and (await r.json())["status"] == 413
    form = aiohttp.FormData()
    form.add_field("fisier", b"0" * (256 * 1024), filename="mare.pem", content_type="application/x-pem-file")
    async with clerk.post(nginx.url("console", "/certificate/nou"), data=form) as r:
        assert r.status == 413 and "Fisier prea mare" in await r.text()
        assert r.headers.getall("Strict-Transport-Security") == [HSTS]


async def test_the_request_rate_is_limited_per_client_address(nginx, clerk):
    """limit_req on the console (50 a second, bursts of 500): one address asking far
    faster is answered 429, in Romanian, by nginx; another address is not held with it."""
    flooder_address = "127.0.0.4"  # of its own: the other tests' addresses keep their allowance
    url = nginx.url("console", "/healthz")
    refused = None
    async with client(nginx, flooder_address) as flooder:
        async def ask() -> None:
            nonlocal refused
            while refused is None:
                async with flooder.get(url) as r:
                    if r.status == 429:
                        refused = (r.headers.get("Content-Type", ""), await r.text())
                    else:
                        assert r.status == 200, r.status

        await asyncio.wait_for(asyncio.gather(*(ask() for _ in range(32))), timeout=30)
    content_type, page = refused
    assert content_type.startswith("text/html") and "Prea multe cereri" in page
    async with clerk.get(url) as r:
        assert r.status == 200


async def test_a_service_being_restarted_is_503_with_retry_after_then_back(nginx, proxied_stack, clerk):
    """kill -9 of keygen: until make up's runner has it back, nginx answers 503
    problem+json with Retry-After (not a 502), with HSTS; then keygen answers again."""
    keygen = next(pid for pid in descendants(proxied_stack.process.pid)
                  if b"services.keygen" in Path(f"/proc/{pid}/cmdline").read_bytes())
    url = nginx.url("keygen", "/healthz")
    os.kill(keygen, signal.SIGKILL)
    seen: Counter[int] = Counter()
    unavailable = None

    async def back() -> bool:
        nonlocal unavailable
        async with clerk.get(url) as r:
            seen[r.status] += 1
            if r.status == 503 and unavailable is None:
                unavailable = (r.headers.get("Content-Type"), r.headers.get("Retry-After"),
                               r.headers.getall("Strict-Transport-Security", []), await r.json())
            return r.status == 200 and unavailable is not None

    await eventually(back, timeout=30, interval=0.01, what="keygen 503 while restarting, then 200")
    content_type, retry_after, hsts, body = unavailable
    assert content_type == "application/problem+json" and int(retry_after) >= 1 and hsts == [HSTS]
    assert body["status"] == 503 and body["type"] == "/problems/unavailable"
    assert set(seen) <= {200, 503}, seen
