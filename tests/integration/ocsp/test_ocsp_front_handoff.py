"""Everything that is not OCSP reaches aiohttp through the front (the contract serves it
all on one port), also after OCSP requests on the same connection; and `openssl ocsp`
against the real front."""
from __future__ import annotations

import asyncio
import json

from tests.support import infra
from tests.support.ocsp_harness import request_der
from tests.support.ocsp_wire import Conn, get, is_good, post
from tests.support.wait import eventually

NATIONAL = {"cas": "CNAS", "username": "admin"}


async def test_healthz_openapi_and_metrics_through_the_front(served, pki):
    conn = await Conn.open(served)
    await conn.send(get("/healthz"))
    reply = await conn.reply()
    assert reply.status == 200 and json.loads(reply.body) == {"status": "alive", "service": "ocsp"}
    await conn.send(get("/openapi.json"))  # the same connection, now aiohttp's
    assert json.loads((await conn.reply()).body)["openapi"].startswith("3.1")
    await conn.close()

    conn = await Conn.open(served)
    token = infra.metrics_headers(pki.data_dir)["Authorization"]
    await conn.send(get("/metrics", headers=f"Authorization: {token}\r\nConnection: close\r\n"))
    reply = await conn.reply()
    assert reply.status == 200 and b"siui_ocsp_responses_total" in reply.body
    assert await conn.closed_by_server()


async def test_the_log_after_an_ocsp_request_on_the_same_connection(served, good, auth_for):
    """POST / (answered by the front), then GET /v1/log (handed to aiohttp) on one
    connection: the answer is there, logged with the client's address."""
    ca, leaf = good
    conn = await Conn.open(served)
    await conn.send(post(request_der(ca, leaf)))
    assert is_good(await conn.reply(), leaf.serial)
    authorization = auth_for(**NATIONAL)["Authorization"]

    async def logged():
        await conn.send(get(f"/v1/log?serial={leaf.serial}", headers=f"Authorization: {authorization}\r\n"))
        reply = await conn.reply()
        assert reply.status == 200, reply.body
        items = json.loads(reply.body)["items"]
        return any(i["status"] == "good" and i["client"] == "127.0.0.1" and i["operation"] == "ocsp" for i in items)

    await eventually(logged, what="the front's answer in GET /v1/log")
    await conn.close()


async def test_pipelined_ocsp_then_api_requests(served, good, auth_for):
    """OCSP, OCSP with a nonce (signed live), then /healthz and a 401 from /v1/log, all in
    one write: four answers, in order; the later two come from aiohttp."""
    ca, leaf = good
    conn = await Conn.open(served)
    await conn.send(post(request_der(ca, leaf)) + post(request_der(ca, leaf, nonce=b"x" * 16))
                    + get("/healthz") + get("/v1/log"))
    first, second, health, log = [await conn.reply() for _ in range(4)]
    assert is_good(first, leaf.serial) and is_good(second, leaf.serial)
    assert health.status == 200 and json.loads(health.body)["status"] == "alive"
    assert log.status == 401 and log.headers["content-type"].startswith("application/problem+json")
    await conn.close()


async def test_unparsable_http_gets_aiohttps_400(served):
    conn = await Conn.open(served)
    await conn.send(b"NOT HTTP AT ALL\r\n\r\n")
    reply = await conn.reply()
    assert reply.status == 400
    assert await conn.closed_by_server()


async def test_api_paths_are_not_taken_for_base64(served, auth_for):
    conn = await Conn.open(served)
    await conn.send(get("/v1/responder.pem"))
    reply = await conn.reply()
    assert reply.status == 200 and reply.body.startswith(b"-----BEGIN CERTIFICATE-----")
    await conn.send(get("/v1/nothing-here"))
    missing = await conn.reply()
    assert missing.status == 404 and missing.headers["content-type"].startswith("application/problem+json")
    await conn.close()


async def test_openssl_against_the_front(served, good, pki, tmp_path):
    ca, leaf = good
    files = {name: issued.write(tmp_path, name)[0] for name, issued in {"ca": ca.authority, "leaf": leaf}.items()}
    process = await asyncio.create_subprocess_exec(
        "openssl", "ocsp", "-issuer", str(files["ca"]), "-cert", str(files["leaf"]),
        "-url", f"http://127.0.0.1:{served.port}/", "-VAfile", str(pki.responder_cert),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    assert "Response verify OK" in out, out
    assert f"{files['leaf']}: good" in out, out
