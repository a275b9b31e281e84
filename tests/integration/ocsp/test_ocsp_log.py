"""The OCSP log through the real app: entries from real OCSP requests, COPY batches into
day partitions, GET /v1/log filters and house scoping, throughput, and a clean stop."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.log import OPLOG, LogEntry
from services.ocsp.log.writer import TEXT_LIMITS
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness
from tests.support.wait import eventually

NATIONAL = {"cas": "CNAS", "username": "admin"}


def entry(marker: str, *, at: datetime | None = None, **kw) -> LogEntry:
    values = {"at": at or datetime.now(timezone.utc), "operation": "ocsp", "status": "good",
              "latency_ms": 0.25, "client": "10.0.0.7", "username": marker, **kw}
    return LogEntry(**values)


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "ocsp"})
    yield conn
    await conn.close()


async def get_log(harness: Harness, auth_for, who=NATIONAL, **params):
    response = await harness.client.get("/v1/log", params={k: str(v) for k, v in params.items()},
                                        headers=auth_for(**who))
    return response.status, await response.json(content_type=None)


async def written(db, marker: str, count: int) -> bool:
    return await db.fetchval("select count(*) from ocsp_log where username = $1", marker) >= count


async def test_a_real_ocsp_request_is_logged(harness: Harness, auth_for):
    ca = await harness.register_issuer(Issuer.new(f"Log CA {uuid.uuid4().hex[:6]}"))
    cui = new_cui()
    username = f"{cui}_CAS-CJ"
    provider = harness.provider(ca, cui)
    certificate_id = await harness.publish_certificate(ca, provider, username)
    await registered(harness.app, ca, provider.serial)
    request = ocsp.OCSPRequestBuilder().add_certificate(provider.cert, ca.cert, hashes.SHA256()).build()
    response = await harness.client.post("/", data=request.public_bytes(serialization.Encoding.DER),
                                         headers={"Content-Type": "application/ocsp-request"})
    assert response.status == 200

    async def logged():
        _, body = await get_log(harness, auth_for, serial=hex(provider.serial))
        return body["items"]

    [item] = await eventually(logged, what="the OCSP answer in the log")
    assert (item["operation"], item["status"], item["cas"], item["username"]) == ("ocsp", "good", "CJ", username)
    assert (item["issuer_id"], item["certificate_id"]) == (ca.issuer_id, certificate_id)
    assert item["latency_ms"] >= 0 and item["client"] == "127.0.0.1"


async def test_entries_land_in_their_day_partition(harness: Harness, db):
    marker = f"part-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    far = datetime(2031, 6, 1, tzinfo=timezone.utc)
    for at in (now, now + timedelta(days=1), far):
        harness.app[OPLOG].record(entry(marker, at=at))
    await eventually(lambda: written(db, marker, 3), what="entries written")
    rows = await db.fetch("select tableoid::regclass::text as part, at from ocsp_log where username = $1 order by at",
                          marker)
    assert [r["part"] for r in rows] == [f"ocsp_log_{now:%Y%m%d}", f"ocsp_log_{now + timedelta(days=1):%Y%m%d}",
                                         "ocsp_log_default"]
    # Creating that day later moves its rows out of the default partition.
    assert await db.fetchval("select ocsp_log_ensure_day($1)", far.date())
    assert await db.fetchval("select tableoid::regclass::text from ocsp_log where username = $1 and at = $2",
                             marker, far) == "ocsp_log_20310601"


async def test_an_unstorable_entry_does_not_block_the_others(harness: Harness, db):
    marker = f"odd-{uuid.uuid4().hex[:8]}"
    oplog = harness.app[OPLOG]
    oplog.record(entry(marker, detail="before"))
    oplog.record(entry(marker, detail="bad \udcff surrogate"))  # not UTF-8: replaced, kept
    oplog.record(entry(marker, detail="nul\x00byte"))            # cleaned
    oplog.record(entry(marker, at="not a time"))                  # dropped before COPY
    oplog.record(entry(marker, detail="after"))
    await eventually(lambda: written(db, marker, 4), what="the good entries")
    rows = await db.fetch("select detail from ocsp_log where username = $1 order by id", marker)
    assert [r["detail"] for r in rows] == ["before", "bad ? surrogate", "nulbyte", "after"]


async def test_oversized_fields_are_capped_and_the_log_keeps_flowing(harness: Harness, db):
    """Regression: a ~4,000-digit serial or a 3 kB user name once made a row larger than the
    btree limit of the indexes; the batch was retried forever and the log went silent."""
    marker = f"big-{uuid.uuid4().hex[:8]}"
    oplog = harness.app[OPLOG]
    oplog.record(LogEntry(datetime.now(timezone.utc), "connect", "offline", 1.0, "x" * 5000, "B",
                          marker, "9" * 4000, "i" * 3000, "c" * 3000, "d" * 10_000))
    oplog.record(entry(marker, detail="after"))
    await eventually(lambda: written(db, marker, 2), what="both entries")
    big = await db.fetchrow("select client, serial, issuer_id, detail from ocsp_log where username = $1 "
                            "and operation = 'connect'", marker)
    assert len(big["serial"]) <= TEXT_LIMITS["serial"] and len(big["detail"]) <= TEXT_LIMITS["detail"]
    assert len(big["client"]) <= TEXT_LIMITS["client"] and big["serial"].startswith("999")


async def test_filters_paging_and_house_scope(harness: Harness, auth_for, db):
    marker = f"filt-{uuid.uuid4().hex[:8]}"
    base = datetime.now(timezone.utc) - timedelta(minutes=10)
    for n in range(6):
        harness.app[OPLOG].record(entry(marker, at=base + timedelta(minutes=n), cas="B" if n % 2 else "CJ",
                                        serial=str(1000 + n), status="good" if n < 4 else "revoked"))
    await eventually(lambda: written(db, marker, 6), what="entries written")

    status, body = await get_log(harness, auth_for, username=marker)
    assert status == 200 and [i["serial"] for i in body["items"]] == [str(1000 + n) for n in range(6)]
    ids = [i["id"] for i in body["items"]]
    assert ids == sorted(ids)  # newest last
    assert [i["serial"] for i in (await get_log(harness, auth_for, username=marker, cas="cj"))[1]["items"]] == \
        ["1000", "1002", "1004"]
    assert [i["serial"] for i in (await get_log(harness, auth_for, username=marker, status="revoked"))[1]["items"]] \
        == ["1004", "1005"]
    assert [i["serial"] for i in (await get_log(harness, auth_for, serial=hex(1003)))[1]["items"]] == ["1003"]
    window = {"from": (base + timedelta(minutes=1)).isoformat(), "to": (base + timedelta(minutes=3)).isoformat()}
    assert [i["serial"] for i in (await get_log(harness, auth_for, username=marker, **window))[1]["items"]] == \
        ["1001", "1002"]

    # Paging: the newest two, then back, then forward from an id.
    _, page = await get_log(harness, auth_for, username=marker, limit=2)
    assert [i["serial"] for i in page["items"]] == ["1004", "1005"]
    _, older = await get_log(harness, auth_for, username=marker, limit=2, before=page["prev_before"])
    assert [i["serial"] for i in older["items"]] == ["1002", "1003"]
    _, forward = await get_log(harness, auth_for, username=marker, limit=3, after=ids[0])
    assert [i["serial"] for i in forward["items"]] == ["1001", "1002", "1003"]
    assert forward["next_after"] == ids[3]

    # A county operator sees their own house only, whatever they ask for.
    county = {"cas": "B", "username": "operator.b"}
    _, mine = await get_log(harness, auth_for, county, username=marker, cas="CJ")
    assert {i["cas"] for i in mine["items"]} == {"B"} and len(mine["items"]) == 3


async def test_a_house_viewer_reads_the_log_with_people_masked(harness: Harness, auth_for, db):
    marker = f"priv-{uuid.uuid4().hex[:8]}"
    serial = str(uuid.uuid4().int % 10**12)
    harness.app[OPLOG].record(entry(marker, cas="B", serial=serial, client="2001:db8:77:1::5"))
    await eventually(lambda: written(db, marker, 1), what="the entry written")
    viewer = {"cas": "B", "username": "viewer.b", "rights": ("ocsp-log:read",)}
    admin = {"cas": "B", "username": "admin.b", "rights": ("ocsp-log:read", "ocsp-log:personal")}

    _, whole = await get_log(harness, auth_for, admin, serial=serial)
    _, masked = await get_log(harness, auth_for, viewer, serial=serial)
    [clear], [hidden] = whole["items"], masked["items"]
    assert (clear["username"], clear["client"]) == (marker, "2001:db8:77:1::5")
    assert hidden["client"] == "2001:db8:77::/48" and marker not in hidden["username"]
    assert {k: v for k, v in hidden.items() if k not in ("client", "username")} == \
        {k: v for k, v in clear.items() if k not in ("client", "username")}
    status, body = await get_log(harness, auth_for, viewer, username=marker)
    assert status == 403 and body["status"] == 403 and "ocsp-log:personal" in body["detail"]


async def test_refusals_are_clear(harness: Harness, auth_for):
    assert (await harness.client.get("/v1/log")).status == 401
    status, body = await get_log(harness, auth_for, {"cas": "B", "rights": ("users:read",)})
    assert status == 403
    status, body = await get_log(harness, auth_for, status="fine", serial="zz", limit=5000, after="x")
    assert status == 422 and body["errors"]
    status, body = await get_log(harness, auth_for, status="fine", serial="zz", **{"from": "yesterday"})
    assert status == 422 and set(body["errors"]) == {"status", "serial", "from"}


async def test_sustained_5000_entries_per_second(harness: Harness, db):
    """Offered at 10,000 entries/s for two seconds, the writer keeps up; then everything
    written at once shows the ceiling."""
    oplog = harness.app[OPLOG]
    marker = f"rate-{uuid.uuid4().hex[:8]}"
    dropped = oplog.dropped
    rate, seconds, tick = 10_000, 2.0, 0.01
    started = time.perf_counter()
    worst_backlog = 0
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * elapsed)
        for _ in range(due - sent):
            oplog.record(entry(marker))
        sent = due
        worst_backlog = max(worst_backlog, oplog.pending)
        await asyncio.sleep(tick)
    await eventually(lambda: written(db, marker, sent), timeout=5, interval=0.02, what="all written")
    finished = time.perf_counter() - started
    print(f"\nOCSP log: {sent} entries offered at {rate}/s, all committed after {finished:.2f} s "
          f"({sent / finished:,.0f}/s), worst backlog {worst_backlog}")
    assert oplog.dropped == dropped
    assert worst_backlog < 5_000  # it kept pace rather than piling up
    assert sent / finished >= 5_000

    burst = f"burst-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    for _ in range(30_000):
        oplog.record(entry(burst))
    await eventually(lambda: written(db, burst, 30_000), timeout=10, interval=0.02, what="burst written")
    print(f"OCSP log: a burst of 30,000 committed in {time.perf_counter() - started:.2f} s "
          f"({30_000 / (time.perf_counter() - started):,.0f}/s)")


async def test_nothing_is_lost_on_a_clean_stop(common_config, db):
    client = TestClient(TestServer(create_app(Config(common=common_config, port=0, tls_port=0, workers=1))))
    await client.start_server()
    marker = f"stop-{uuid.uuid4().hex[:8]}"
    for _ in range(20_000):
        client.server.app[OPLOG].record(entry(marker))
    await client.close()  # as on SIGTERM: the sites stop, then the writer drains the buffer
    assert await db.fetchval("select count(*) from ocsp_log where username = $1", marker) == 20_000
